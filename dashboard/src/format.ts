/** Epoch seconds (as the API returns them) to a local date and time. */
export function when(seconds: number | undefined): string {
  if (seconds === undefined) return '—';
  return new Date(seconds * 1000).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** How long ago, in words short enough for a table cell. */
export function ago(seconds: number | undefined, now = Date.now()): string {
  if (seconds === undefined) return '—';
  const s = Math.max(0, Math.round(now / 1000 - seconds));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}
