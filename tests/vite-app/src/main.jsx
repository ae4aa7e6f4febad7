// The page: the README's three lines connect the tab, then React renders the app.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connect } from 'outbox';
import workerUrl from './outbox-worker.js?worker&url';
import { App } from './App.jsx';

const client = await connect({ app: 'todos', workerUrl, http: { todos: { url: '/api/mutations', batch: true } } });

const todos = client.collection('todos', { key: 'id' });
createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App client={client} todos={todos} />
  </StrictMode>,
);
