//! The built-in HTTP mutation function, without the I/O: how a transaction becomes a request,
//! and how an answer becomes an attempt outcome.
//!
//! Requests carry `Idempotency-Key` (the transaction id) and `Outbox-Epoch` (the calling
//! leader's epoch). A server that has already heard from a newer leader answers with the header
//! `Outbox-Fenced`, which makes the caller step down (see [`AttemptError::fenced`]).
//!
//! A batch request carries many transactions, each with its own idempotency key and its own
//! answer: `POST <url>/batch` with `{"transactions":[…]}`, answered by
//! `{"results":[{"id","status","body"}…]}`.

use crate::executor::{AttemptOutcome, AttemptSuccess};
use crate::model::{Millis, Transaction, TransactionId};
use crate::retry::{classify_http, parse_retry_after, AttemptError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Header with the transaction's id.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header with the calling leader's epoch.
pub const EPOCH_HEADER: &str = "Outbox-Epoch";
/// The header naming the lineage `Outbox-Epoch` counts in (see
/// [`crate::store::Loaded::lineage`]): a server fences epochs per lineage, so leaders of
/// another browser's outbox, whose epochs count from 1 too, do not fence this one.
pub const LINEAGE_HEADER: &str = "Outbox-Scope";
/// Header a server sets when it refuses a deposed leader.
pub const FENCED_HEADER: &str = "Outbox-Fenced";

/// Where and how to send one mutation function's transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Unknown fields are refused: a misspelt one (`batched`) would be ignored without a word.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpEndpoint {
    /// The URL transactions are POSTed to.
    pub url: String,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// Send transactions that are ready together in one request to `<url>/batch`.
    #[serde(default)]
    pub batch: bool,
    /// The most bytes a batch request's body may hold (default [`MAX_BATCH_BYTES`]): a
    /// batch is cut into requests under it, since a server refuses a body over its limit
    /// whole, and that answer is every transaction's in it. A transaction larger alone goes
    /// alone.
    #[serde(default)]
    pub max_batch_bytes: Option<usize>,
    /// How long a request may go unanswered, in ms (default [`REQUEST_TIMEOUT_MS`]; 0 for no
    /// limit). One that runs over is aborted and taken as no answer (`OUTBOX_NETWORK`): retried
    /// with the same idempotency key, without spending the retry budget. Without a limit, a
    /// request that never answers (a connection that hangs) held its transactions' keys for
    /// the whole term.
    #[serde(default)]
    pub timeout_ms: Option<Millis>,
}

/// The default [`HttpEndpoint::timeout_ms`]: 30 s.
pub const REQUEST_TIMEOUT_MS: Millis = 30_000;

/// The default [`HttpEndpoint::max_batch_bytes`]: 512 KiB, half the reference server's
/// default body limit. A transaction's record counts each row two or three times (`original`,
/// `modified`, `changes`), so 100 edits of rows of 4 kB are ~1.6 MB.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// A request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
    /// Aborted (and taken as no answer) after this long; `None` for no limit.
    pub timeout_ms: Option<Millis>,
}

impl HttpRequest {
    /// The request with `Outbox-Scope: <lineage>` beside its `Outbox-Epoch` (one without an
    /// epoch, a tab's online-only call, is not fenced and stays as it is).
    pub fn in_lineage(mut self, lineage: Option<&str>) -> Self {
        let fenced = self.headers.iter().any(|(k, _)| k == EPOCH_HEADER);
        if let (Some(lineage), true) = (lineage, fenced) {
            self.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case(LINEAGE_HEADER));
            self.headers.push((LINEAGE_HEADER.into(), lineage.into()));
        }
        self
    }
}

/// An answer received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpAnswer {
    /// The status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Whether the `Outbox-Fenced` header was present.
    pub fenced: bool,
    /// The body text.
    pub body: String,
    /// Where the browser was redirected to on the way, if it was (`Response.redirected`, with
    /// its final `url`).
    pub redirected_to: Option<String>,
}

/// A batch body without its transactions: `{"transactions":[]}`.
const BATCH_FRAME: &str = "{\"transactions\":[]}";

/// A transaction as a request body carries it.
fn tx_json(tx: &Transaction) -> String {
    serde_json::to_string(tx).unwrap_or_default()
}

impl HttpEndpoint {
    /// The limit a request of this endpoint gets ([`HttpEndpoint::timeout_ms`]).
    fn timeout(&self) -> Option<Millis> {
        match self.timeout_ms {
            None => Some(REQUEST_TIMEOUT_MS),
            Some(0) => None,
            Some(ms) => Some(ms),
        }
    }

    /// Epoch 0 is no leadership (a tab running online-only): it sends no `Outbox-Epoch`, so
    /// servers do not fence it.
    fn base_headers(&self, tx_epoch: u64) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> =
            vec![("Content-Type".into(), "application/json".into())];
        if tx_epoch > 0 {
            headers.push((EPOCH_HEADER.into(), tx_epoch.to_string()));
        }
        let mut extra: Vec<_> = self.headers.iter().collect();
        extra.sort();
        headers.extend(extra.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        headers
    }

    /// The request for one transaction.
    pub fn request(&self, tx: &Transaction) -> HttpRequest {
        let mut headers = self.base_headers(tx.epoch.0);
        headers.push((IDEMPOTENCY_KEY.into(), tx.id.0.clone()));
        HttpRequest {
            url: self.url.clone(),
            headers,
            body: tx_json(tx),
            timeout_ms: self.timeout(),
        }
    }

    /// The requests for several transactions (all from one leader), in order, each with how
    /// many of them it carries: as many as fit in [`HttpEndpoint::max_batch_bytes`], and at
    /// least one.
    pub fn batch_requests(&self, txs: &[&Transaction]) -> Vec<(HttpRequest, usize)> {
        let cap = self.max_batch_bytes.unwrap_or(MAX_BATCH_BYTES);
        let epoch = txs.first().map_or(0, |t| t.epoch.0);
        let mut requests = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut bytes = BATCH_FRAME.len();
        for tx in txs {
            let text = tx_json(tx);
            // One comma between transactions.
            if !texts.is_empty() && bytes + 1 + text.len() > cap {
                requests.push((self.batch_of(epoch, &texts), texts.len()));
                texts.clear();
                bytes = BATCH_FRAME.len();
            }
            bytes += text.len() + usize::from(!texts.is_empty());
            texts.push(text);
        }
        if !texts.is_empty() {
            requests.push((self.batch_of(epoch, &texts), texts.len()));
        }
        requests
    }

    /// The batch request carrying these transactions' JSON texts.
    fn batch_of(&self, epoch: u64, texts: &[String]) -> HttpRequest {
        HttpRequest {
            url: format!("{}/batch", self.url.trim_end_matches('/')),
            headers: self.base_headers(epoch),
            body: format!("{{\"transactions\":[{}]}}", texts.join(",")),
            timeout_ms: self.timeout(),
        }
    }
}

/// What one answer means for the attempt. `now` dates a `Retry-After` given as a date.
pub fn outcome(answer: &HttpAnswer, now: Millis) -> AttemptOutcome {
    if answer.fenced {
        return Err(AttemptError::fenced(format!(
            "the server refused a deposed leader ({})",
            answer.status
        )));
    }
    let retry_after = answer
        .retry_after
        .as_deref()
        .and_then(|v| parse_retry_after(v, now));
    if let (Some(to), true) = (&answer.redirected_to, (200..300).contains(&answer.status)) {
        // A 301/302/303 turns the POST into a GET without its body (a session that expired
        // and a sign-in page answering 200, say): the endpoint never had the transaction, and
        // taking the page for a success lost it without a word.
        return Err(AttemptError::non_retriable(format!(
            "the request was redirected to {to}, whose answer ({}) is not the endpoint's: a \
             redirected POST may arrive as a GET without its body (a sign-in page?); give the \
             URL that answers it",
            answer.status
        )));
    }
    match classify_http(answer.status, retry_after) {
        Some(mut err) => {
            if let Some(msg) = error_message(&answer.body) {
                err.error.message = format!("{}: {msg}", err.error.message);
            }
            Err(err)
        }
        None => Ok(AttemptSuccess {
            server_seq: server_seq(&answer.body),
        }),
    }
}

/// The outcome of a request that got no answer at all (network down, connection dropped).
pub fn network_error(message: &str) -> AttemptOutcome {
    Err(AttemptError::network(format!("network error: {message}")))
}

/// Splits a batch answer into one outcome per transaction. Transactions the answer does not
/// mention get a retriable error, so nothing is taken for done without a word from the server.
pub fn batch_outcomes(
    answer: &HttpAnswer,
    ids: &[TransactionId],
    now: Millis,
) -> Vec<(TransactionId, AttemptOutcome)> {
    #[derive(Deserialize)]
    struct Item {
        id: Option<String>,
        status: Option<u16>,
        #[serde(default)]
        body: Value,
    }
    #[derive(Deserialize)]
    struct Results {
        results: Vec<Item>,
    }
    let whole = outcome(answer, now);
    let parsed = match whole {
        Ok(_) => serde_json::from_str::<Results>(&answer.body).ok(),
        Err(_) => None,
    };
    let Some(results) = parsed else {
        // The request as a whole failed (or its body is unreadable): every transaction shares
        // that fate.
        let err = match outcome(answer, now) {
            Err(e) => e,
            Ok(_) => AttemptError::retriable("unreadable batch answer"),
        };
        return ids
            .iter()
            .map(|id| (id.clone(), Err(err.clone())))
            .collect();
    };
    let mut by_id: HashMap<String, AttemptOutcome> = HashMap::new();
    for item in results.results {
        let (Some(id), Some(status)) = (item.id, item.status) else {
            continue;
        };
        let item_answer = HttpAnswer {
            status,
            retry_after: None,
            fenced: item
                .body
                .pointer("/error/code")
                .and_then(Value::as_str)
                .is_some_and(|c| c == "STALE_EPOCH"),
            body: item.body.to_string(),
            redirected_to: None,
        };
        by_id.insert(id, outcome(&item_answer, now));
    }
    ids.iter()
        .map(|id| {
            let o = by_id
                .remove(id.as_str())
                .unwrap_or_else(|| Err(AttemptError::retriable("missing from the batch answer")));
            (id.clone(), o)
        })
        .collect()
}

/// The server sequence number in a success body: `{"seq": N}`.
fn server_seq(body: &str) -> Option<u64> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// `{"error":{"message":…}}` or `{"message":…}` in an error body.
fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let msg = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))?
        .as_str()?;
    Some(msg.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Epoch, ErrorCode, PendingMutation, Strategy};
    use crate::retry::ErrorKind;
    use serde_json::json;

    fn tx(id: &str) -> Transaction {
        let mut t = Transaction::new(
            id.into(),
            "todos",
            Strategy::Ordered,
            vec![PendingMutation::insert("todos", "1", json!({"id": "1"}))],
            0,
        );
        t.epoch = Epoch(7);
        t
    }

    fn answer(status: u16, body: Value) -> HttpAnswer {
        HttpAnswer {
            status,
            body: body.to_string(),
            ..HttpAnswer::default()
        }
    }

    #[test]
    fn requests_carry_the_idempotency_key_and_the_epoch() {
        let ep = HttpEndpoint {
            url: "/api/mutations".into(),
            headers: [("Authorization".to_owned(), "Bearer x".to_owned())].into(),
            batch: false,
            max_batch_bytes: None,
            timeout_ms: None,
        };
        let r = ep.request(&tx("t1"));
        assert_eq!(r.url, "/api/mutations");
        assert!(r.headers.contains(&(IDEMPOTENCY_KEY.into(), "t1".into())));
        assert_eq!(r.timeout_ms, Some(REQUEST_TIMEOUT_MS), "a limit by default");
        assert!(r.headers.contains(&(EPOCH_HEADER.into(), "7".into())));
        assert!(r
            .headers
            .contains(&("Authorization".into(), "Bearer x".into())));
        let body: Transaction = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body, tx("t1"));
        let (a, b) = (tx("a"), tx("b"));
        let mut batch = ep.batch_requests(&[&a, &b]);
        assert_eq!(batch.len(), 1);
        let (br, _) = batch.remove(0);
        assert_eq!(br.url, "/api/mutations/batch");
        let v: Value = serde_json::from_str(&br.body).unwrap();
        assert_eq!(v["transactions"].as_array().unwrap().len(), 2);
        let mut unled = tx("u");
        unled.epoch = Epoch(0);
        let r = ep.request(&unled);
        assert!(
            r.headers.iter().all(|(k, _)| k != EPOCH_HEADER),
            "online-only is not fenced"
        );
    }

    #[test]
    fn a_batch_is_cut_into_requests_under_the_byte_cap_and_a_large_transaction_goes_alone() {
        let big = |id: &str, n: usize| {
            let mut t = tx(id);
            t.mutations = vec![PendingMutation::insert(
                "todos",
                id,
                json!({"id": id, "note": "x".repeat(n)}),
            )]
            .into();
            t
        };
        let one = tx_json(&big("a", 1_000)).len();
        let ep = HttpEndpoint {
            url: "/api/mutations".into(),
            headers: HashMap::new(),
            batch: true,
            max_batch_bytes: Some(3 * one + 100),
            timeout_ms: None,
        };
        let txs: Vec<Transaction> = (0..7)
            .map(|i| big(&format!("t{i}"), 1_000))
            .chain([big("huge", 10_000), big("last", 1_000)])
            .collect();
        let refs: Vec<&Transaction> = txs.iter().collect();
        let requests = ep.batch_requests(&refs);
        let counts: Vec<usize> = requests.iter().map(|(_, n)| *n).collect();
        assert_eq!(
            counts,
            [3, 3, 1, 1, 1],
            "the huge one alone, and after it the rest"
        );
        let mut ids = Vec::new();
        for (r, n) in &requests {
            assert_eq!(r.url, "/api/mutations/batch");
            assert!(r.headers.contains(&(EPOCH_HEADER.into(), "7".into())));
            let v: Value = serde_json::from_str(&r.body).unwrap();
            let listed = v["transactions"].as_array().unwrap();
            assert_eq!(listed.len(), *n);
            if *n > 1 {
                assert!(r.body.len() <= 3 * one + 100, "{}", r.body.len());
            }
            ids.extend(listed.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        }
        let want: Vec<String> = txs.iter().map(|t| t.id.0.clone()).collect();
        assert_eq!(ids, want, "each once, in order");
        // Under the default cap, one request carries all of them, as `{"transactions":[…]}`.
        let all = HttpEndpoint {
            max_batch_bytes: None,
            ..ep
        };
        let requests = all.batch_requests(&refs);
        assert_eq!(requests.len(), 1);
        let body: Value = serde_json::from_str(&requests[0].0.body).unwrap();
        assert_eq!(body, json!({ "transactions": txs }));
    }

    #[test]
    fn an_endpoint_or_a_retry_policy_with_a_field_it_does_not_know_is_refused_by_name() {
        let ok: HttpEndpoint =
            serde_json::from_value(json!({"url": "/api", "batch": true, "maxBatchBytes": 9}))
                .unwrap();
        assert_eq!((ok.batch, ok.max_batch_bytes), (true, Some(9)));
        // A timeout of its own, or none (0).
        for (given, limit) in [(json!(5_000), Some(5_000)), (json!(0), None)] {
            let ep: HttpEndpoint =
                serde_json::from_value(json!({"url": "/api", "timeoutMs": given})).unwrap();
            assert_eq!(ep.request(&tx("t")).timeout_ms, limit);
            assert_eq!(ep.batch_requests(&[&tx("t")])[0].0.timeout_ms, limit);
        }
        let e = serde_json::from_value::<HttpEndpoint>(json!({"url": "/api", "batched": true}))
            .unwrap_err();
        assert!(e.to_string().contains("batched"), "{e}");
        let e = serde_json::from_value::<crate::retry::RetryPolicy>(json!({"maxAttempts": 2}))
            .unwrap_err();
        assert!(e.to_string().contains("maxAttempts"), "{e}");
    }

    #[test]
    fn an_answer_from_where_a_redirect_led_is_not_a_success() {
        let ids: Vec<TransactionId> = vec!["a".into(), "b".into()];
        let mut page = answer(200, json!({ "results": [] }));
        page.body = "<html>Sign in</html>".into();
        page.redirected_to = Some("https://app.example/login".into());
        let err = outcome(&page, 0).unwrap_err();
        assert_eq!(err.error.code, ErrorCode::NonRetriable);
        assert!(
            err.error.message.contains("/login"),
            "{}",
            err.error.message
        );
        for (_, o) in batch_outcomes(&page, &ids, 0) {
            assert_eq!(o.unwrap_err().error.code, ErrorCode::NonRetriable);
        }
        // Not redirected, the same answer is a success; redirected to an error, the error
        // decides.
        page.redirected_to = None;
        assert!(outcome(&page, 0).is_ok());
        let mut refused = answer(401, json!({}));
        refused.redirected_to = Some("https://app.example/api/v2".into());
        assert_eq!(
            outcome(&refused, 0).unwrap_err().error.code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn a_fenced_request_names_its_lineage_and_an_unfenced_one_none() {
        let ep = HttpEndpoint {
            url: "/api/mutations".into(),
            headers: [("outbox-scope".to_owned(), "app's".to_owned())].into(),
            batch: true,
            max_batch_bytes: None,
            timeout_ms: None,
        };
        let r = ep.request(&tx("t1")).in_lineage(Some("L1"));
        let scopes: Vec<&(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(LINEAGE_HEADER))
            .collect();
        assert_eq!(scopes, [&(LINEAGE_HEADER.to_owned(), "L1".to_owned())]);
        let (a, b) = (tx("a"), tx("b"));
        let (br, _) = ep.batch_requests(&[&a, &b]).remove(0);
        let br = br.in_lineage(Some("L1"));
        assert!(br.headers.contains(&(LINEAGE_HEADER.into(), "L1".into())));
        let mut unled = tx("u");
        unled.epoch = Epoch(0);
        let r = ep.request(&unled).in_lineage(Some("L1"));
        assert!(!r.headers.contains(&(LINEAGE_HEADER.into(), "L1".into())));
        assert_eq!(
            ep.request(&tx("t1")).in_lineage(None),
            ep.request(&tx("t1"))
        );
    }

    #[test]
    fn answers_are_classified_by_status_and_headers() {
        assert_eq!(
            outcome(&answer(200, json!({"seq": 12})), 0),
            Ok(AttemptSuccess {
                server_seq: Some(12)
            })
        );
        assert_eq!(
            outcome(&answer(204, json!(null)), 0),
            Ok(AttemptSuccess { server_seq: None })
        );
        let e = outcome(
            &answer(
                422,
                json!({"error": {"code": "MISSING_KEY", "message": "no key"}}),
            ),
            0,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NonRetriable);
        assert!(e.error.message.ends_with("no key"));
        let mut a = answer(503, json!({}));
        a.retry_after = Some("3".into());
        assert_eq!(outcome(&a, 0).unwrap_err().retry_after_ms, Some(3000));
        let mut f = answer(409, json!({"error": {"code": "STALE_EPOCH"}}));
        f.fenced = true;
        assert_eq!(outcome(&f, 0).unwrap_err().error.code, ErrorCode::Fenced);
        assert!(network_error("reset").unwrap_err().is_retriable());
    }

    #[test]
    fn batch_answers_split_per_transaction_and_silence_is_not_success() {
        let ids: Vec<TransactionId> = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        let body = json!({"results": [
            {"id": "a", "status": 200, "body": {"seq": 3}},
            {"id": "b", "status": 400, "body": {"error": {"code": "MISSING_KEY", "message": "m"}}},
            {"id": "c", "status": 409, "body": {"error": {"code": "STALE_EPOCH"}}},
        ]});
        let out = batch_outcomes(&answer(200, body), &ids, 0);
        assert_eq!(
            out[0].1,
            Ok(AttemptSuccess {
                server_seq: Some(3)
            })
        );
        assert_eq!(out[1].1.as_ref().unwrap_err().kind, ErrorKind::NonRetriable);
        assert_eq!(out[2].1.as_ref().unwrap_err().error.code, ErrorCode::Fenced);
        assert!(out[3].1.as_ref().unwrap_err().is_retriable());
        let down = batch_outcomes(&answer(503, json!({})), &ids, 0);
        assert!(down
            .iter()
            .all(|(_, o)| o.as_ref().unwrap_err().is_retriable()));
        let garbage = batch_outcomes(&answer(200, json!("nope")), &ids, 0);
        assert!(garbage.iter().all(|(_, o)| o.is_err()));
    }
}
