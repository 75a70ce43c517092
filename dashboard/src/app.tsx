import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError, forgetKey, setUnauthorizedHandler, storedKey, storeKey } from './api';
import { LiveJobs, useLive } from './live';
import { href, useRoute } from './router';
import { Login } from './views/login';
import { JobsList } from './views/jobs';
import { JobDetail } from './views/job-detail';
import { ThingView } from './views/thing';
import { CreateJob } from './views/create-job';
import { SchedulesView } from './views/schedules';
import { DeadLettersView } from './views/dead-letters';
import { Empty, Loading } from './components/notice';

/** undefined: not known yet; 'key': signed in with a stored key; 'open': the server runs with AUTH_MODE=off. */
type Session = undefined | 'login' | 'key' | 'open';

export function App() {
  const [session, setSession] = useState<Session>(storedKey() ? 'key' : undefined);
  const [message, setMessage] = useState<string>();

  useEffect(() => {
    setUnauthorizedHandler((m) => {
      forgetKey();
      setMessage(`Signed out: ${m}`);
      setSession('login');
    });
    if (session !== undefined) return;
    // Without a stored key, a server with authentication off answers anyway: no login needed.
    api('GET', '/jobs?maxResults=1', undefined, null)
      .then(() => setSession('open'))
      .catch((err: unknown) => {
        if (!(err instanceof ApiError && err.status === 401)) setMessage((err as Error).message);
        setSession('login');
      });
  }, [session]);

  if (session === undefined) return <Loading />;
  if (session === 'login') {
    return (
      <Login
        message={message}
        onLogin={(key) => {
          storeKey(key);
          setMessage(undefined);
          setSession('key');
        }}
      />
    );
  }
  return (
    <Shell
      open={session === 'open'}
      onLogout={() => {
        forgetKey();
        setMessage(undefined);
        setSession('login');
      }}
    />
  );
}

function Shell({ open, onLogout }: { open: boolean; onLogout: () => void }) {
  const live = useMemo(() => new LiveJobs(), []);
  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);
  useLive(live);
  const route = useRoute();

  return (
    <>
      <header class="top">
        <a class="brand" href={href.jobs()}>
          fleetjobs
        </a>
        <nav>
          <a href={href.jobs()} class={route.view === 'jobs' || route.view === 'job' ? 'on' : ''}>
            Jobs
          </a>
          <a href={href.newJob()} class={route.view === 'new-job' ? 'on' : ''}>
            New job
          </a>
          <a href={href.schedules()} class={route.view === 'schedules' ? 'on' : ''}>
            Schedules
          </a>
          <a href={href.deadLetters()} class={route.view === 'dead-letters' ? 'on' : ''}>
            Dead letters
          </a>
        </nav>
        <span class="grow" />
        <span class={`stream stream-${live.state}`} title={live.stateDetail ?? ''} data-stream={live.state}>
          {live.state === 'live' ? 'live' : live.state === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
        {open ? (
          <span class="muted small" title="the server runs with AUTH_MODE=off">
            no authentication
          </span>
        ) : (
          <button type="button" class="link light" onClick={onLogout}>
            Sign out
          </button>
        )}
      </header>
      <main class="content">
        {route.view === 'jobs' && <JobsList live={live} />}
        {route.view === 'job' && <JobDetail jobId={route.jobId} live={live} />}
        {route.view === 'thing' && <ThingView thingName={route.thingName} />}
        {route.view === 'new-job' && <CreateJob />}
        {route.view === 'schedules' && <SchedulesView scheduleId={route.scheduleId} />}
        {route.view === 'dead-letters' && <DeadLettersView />}
        {route.view === 'not-found' && (
          <Empty>
            Nothing at <code>{route.path}</code>. <a href={href.jobs()}>Back to the jobs</a>.
          </Empty>
        )}
      </main>
    </>
  );
}
