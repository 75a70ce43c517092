import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/jobs/abc`): the server serves one page at `/`, and the state of the view is in the address
 * so that it can be reloaded, bookmarked and shared. A new view is one entry here and one case in app.tsx.
 */
export type Route =
  | { view: 'jobs' }
  | { view: 'job'; jobId: string }
  | { view: 'thing'; thingName: string }
  | { view: 'new-job' }
  | { view: 'schedules'; scheduleId?: string }
  | { view: 'dead-letters' }
  | { view: 'not-found'; path: string };

const PATTERNS: { pattern: RegExp; route: (m: string[]) => Route }[] = [
  { pattern: /^\/?$/, route: () => ({ view: 'jobs' }) },
  { pattern: /^\/jobs$/, route: () => ({ view: 'jobs' }) },
  { pattern: /^\/jobs\/new$/, route: () => ({ view: 'new-job' }) },
  { pattern: /^\/jobs\/([^/]+)$/, route: (m) => ({ view: 'job', jobId: decodeURIComponent(m[1] ?? '') }) },
  { pattern: /^\/schedules$/, route: () => ({ view: 'schedules' }) },
  {
    pattern: /^\/schedules\/([^/]+)$/,
    route: (m) => ({ view: 'schedules', scheduleId: decodeURIComponent(m[1] ?? '') }),
  },
  { pattern: /^\/dead-letters$/, route: () => ({ view: 'dead-letters' }) },
  {
    pattern: /^\/things\/([^/]+)$/,
    route: (m) => ({ view: 'thing', thingName: decodeURIComponent(m[1] ?? '') }),
  },
];

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  for (const { pattern, route } of PATTERNS) {
    const m = pattern.exec(path);
    if (m) return route([...m]);
  }
  return { view: 'not-found', path };
}

export const href = {
  jobs: () => '#/jobs',
  job: (jobId: string) => `#/jobs/${encodeURIComponent(jobId)}`,
  thing: (thingName: string) => `#/things/${encodeURIComponent(thingName)}`,
  newJob: () => '#/jobs/new',
  schedules: () => '#/schedules',
  schedule: (scheduleId: string) => `#/schedules/${encodeURIComponent(scheduleId)}`,
  deadLetters: () => '#/dead-letters',
};

export function navigate(to: string): void {
  window.location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
