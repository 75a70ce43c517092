import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api';
import { href, navigate } from '../router';
import { ErrorNotice } from '../components/notice';
import type { JobTemplate } from '../types';

type Source = 'document' | 'template';

const EXAMPLE_DOCUMENT = `{
  "operation": "reboot"
}`;

/** CreateJob from a JSON document, or from a job template with values for its documentParameters. */
export function CreateJob() {
  const [jobId, setJobId] = useState('');
  const [targets, setTargets] = useState('');
  const [targetSelection, setTargetSelection] = useState<'SNAPSHOT' | 'CONTINUOUS'>('SNAPSHOT');
  const [description, setDescription] = useState('');
  const [source, setSource] = useState<Source>('document');
  const [document, setDocument] = useState(EXAMPLE_DOCUMENT);
  const [templates, setTemplates] = useState<JobTemplate[]>();
  const [templateId, setTemplateId] = useState('');
  const [template, setTemplate] = useState<JobTemplate>();
  const [params, setParams] = useState<Record<string, string>>({});
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<{ jobTemplates: JobTemplate[] }>('GET', '/job-templates?maxResults=100')
      .then((r) => setTemplates(r.jobTemplates))
      .catch(() => setTemplates([]));
  }, []);

  useEffect(() => {
    setTemplate(undefined);
    setParams({});
    if (templateId === '') return;
    api<JobTemplate>('GET', `/job-templates/${seg(templateId)}`)
      .then((t) => {
        setTemplate(t);
        setParams(Object.fromEntries((t.documentParameters ?? []).map((p) => [p.key, ''])));
      })
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [templateId]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const targetList = targets
      .split(/[\s,]+/)
      .map((t) => t.trim())
      .filter((t) => t !== '')
      .map((t) => (t.includes('/') || t.startsWith('arn:') ? t : `thing/${t}`));
    if (jobId.trim() === '') return setError('Give the job an id.');
    if (targetList.length === 0) return setError('Name at least one target.');
    const body: Record<string, unknown> = { targets: targetList, targetSelection };
    if (description.trim() !== '') body.description = description.trim();
    if (source === 'document') {
      try {
        JSON.parse(document);
      } catch (err) {
        return setError(`The document is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      body.document = document;
    } else {
      if (!template) return setError('Choose a template.');
      body.jobTemplateArn = template.jobTemplateArn ?? template.jobTemplateId;
      const filled = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== ''));
      if (Object.keys(filled).length > 0) body.documentParameters = filled;
    }
    setBusy(true);
    try {
      await api('PUT', `/jobs/${seg(jobId.trim())}`, body);
      navigate(href.job(jobId.trim()));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <section class="card narrow">
      <div class="card-head">
        <a href={href.jobs()}>← Jobs</a>
        <h2>New job</h2>
      </div>
      <form class="stack" onSubmit={submit}>
        <label>
          Job id
          <input
            name="jobId"
            value={jobId}
            onInput={(e) => setJobId(e.currentTarget.value)}
            placeholder="reboot-2026-03"
            pattern="[a-zA-Z0-9_\-]{1,64}"
            title="letters, digits, - and _; at most 64"
            required
          />
        </label>
        <label>
          Targets <span class="muted">(thing names, thing/NAME, thinggroup/NAME or ARNs; one per line)</span>
          <textarea
            name="targets"
            rows={3}
            value={targets}
            onInput={(e) => setTargets(e.currentTarget.value)}
            placeholder={'thermostat-1\nthinggroup/lobby'}
          />
        </label>
        <div class="row">
          <label>
            Target selection
            <select
              name="targetSelection"
              value={targetSelection}
              onChange={(e) => setTargetSelection(e.currentTarget.value as 'SNAPSHOT' | 'CONTINUOUS')}
            >
              <option value="SNAPSHOT">SNAPSHOT — the targets as they are now</option>
              <option value="CONTINUOUS">CONTINUOUS — things that join a target group later too</option>
            </select>
          </label>
        </div>
        <label>
          Description <span class="muted">(optional)</span>
          <input
            name="description"
            value={description}
            onInput={(e) => setDescription(e.currentTarget.value)}
          />
        </label>
        <fieldset>
          <legend>Job document</legend>
          <div class="segmented">
            <label class={source === 'document' ? 'on' : ''}>
              <input
                type="radio"
                name="source"
                value="document"
                checked={source === 'document'}
                onChange={() => setSource('document')}
              />
              Write a document
            </label>
            <label class={source === 'template' ? 'on' : ''}>
              <input
                type="radio"
                name="source"
                value="template"
                checked={source === 'template'}
                onChange={() => setSource('template')}
              />
              From a template
            </label>
          </div>
          {source === 'document' ? (
            <textarea
              name="document"
              class="mono"
              rows={8}
              value={document}
              onInput={(e) => setDocument(e.currentTarget.value)}
            />
          ) : templates !== undefined && templates.length === 0 ? (
            <p class="muted">
              There are no job templates yet; create one with <code>PUT /job-templates/ID</code>.
            </p>
          ) : (
            <div class="stack">
              <label>
                Template
                <select
                  name="template"
                  value={templateId}
                  onChange={(e) => setTemplateId(e.currentTarget.value)}
                >
                  <option value="">choose…</option>
                  {(templates ?? []).map((t) => (
                    <option key={t.jobTemplateId} value={t.jobTemplateId}>
                      {t.jobTemplateId}
                      {t.description ? ` — ${t.description}` : ''}
                    </option>
                  ))}
                </select>
              </label>
              {template?.documentParameters?.map((p) => (
                <label key={p.key}>
                  {p.key} {p.optional && <span class="muted">(optional)</span>}
                  {p.description && <span class="muted small"> {p.description}</span>}
                  <input
                    name={`param-${p.key}`}
                    value={params[p.key] ?? ''}
                    placeholder={p.example ?? ''}
                    required={!p.optional}
                    onInput={(e) => {
                      const v = e.currentTarget.value;
                      setParams((old) => ({ ...old, [p.key]: v }));
                    }}
                  />
                </label>
              ))}
              {template?.document && (
                <details class="document">
                  <summary>Template document</summary>
                  <pre>{template.document}</pre>
                </details>
              )}
            </div>
          )}
        </fieldset>
        {error && <ErrorNotice error={error} />}
        <div class="actions">
          <a class="button" href={href.jobs()}>
            Back
          </a>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create job'}
          </button>
        </div>
      </form>
    </section>
  );
}
