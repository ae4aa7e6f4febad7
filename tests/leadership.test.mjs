// Exactly one leader among 5 tabs: with dedicated workers forced (one tab's worker holds the Web
// Lock, the others follow), and with the default SharedWorker (it leads for every tab).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDemo } from './harness.mjs';
import { openTab, settledRoles } from './tabs.mjs';

const TABS = 5;

test('dedicated workers: exactly one of 5 tabs leads, all under one epoch', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < TABS; i++) pages.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(pages);
    const leaders = roles.filter((r) => r.isLeaderTab);
    assert.equal(leaders.length, 1, `one leader tab; roles: ${JSON.stringify(roles)}`);
    // Still one after every tab has seen the same epoch (no second worker took over).
    const again = await settledRoles(pages);
    assert.equal(again.filter((r) => r.isLeaderTab).length, 1);
    assert.equal(again[0].leaderEpoch, roles[0].leaderEpoch, 'the epoch did not move');
  });
});

test('SharedWorker: all 5 tabs offline-enabled under the same epoch, no tab leads itself', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < TABS; i++) pages.push(await openTab(browser, server));
    const roles = await settledRoles(pages);
    assert.equal(new Set(roles.map((r) => r.leaderEpoch)).size, 1, JSON.stringify(roles));
    assert.equal(roles.filter((r) => r.isLeaderTab).length, 0, 'the shared worker leads, not a tab');
  });
});
