/**
 * Resources the leak check (test/setup/leak-check.ts) cannot see as handles, such as an in-memory PGlite:
 * a helper registers what it opens and unregisters it on close.
 */
const open = new Map<object, string>();

export function trackOpen(resource: object, description: string): void {
  open.set(resource, description);
}

export function trackClosed(resource: object): void {
  open.delete(resource);
}

export function openResources(): string[] {
  return [...open.values()];
}
