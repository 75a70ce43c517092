import { useState } from 'preact/hooks';
import { api, ApiError } from '../api';

/** Asks for an operator key and checks it with one ListJobs call before keeping it. */
export function Login({ message, onLogin }: { message: string | undefined; onLogin: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const k = key.trim();
    if (k === '') return setError('Enter an operator key.');
    setBusy(true);
    try {
      await api('GET', '/jobs?maxResults=1', undefined, k);
      onLogin(k);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? `The server refused this key: ${err.message}`
          : err instanceof Error
            ? err.message
            : String(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form class="card" onSubmit={submit}>
        <h1>fleetjobs</h1>
        <p class="muted">Sign in with an operator key (the access key id, a dot and the secret).</p>
        <label>
          Operator key
          <input
            name="operatorKey"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            placeholder="FJ….secret"
          />
        </label>
        {error && (
          <div class="notice notice-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p class="muted small">
          The key stays in this tab&apos;s session storage and is sent as a Bearer token; closing the tab
          forgets it. <code>fleetjobs serve</code> prints the first admin key;{' '}
          <code>POST /operator-keys</code> makes more.
        </p>
      </form>
    </main>
  );
}
