import { writeFile } from 'node:fs/promises';
import { path } from './api-client.js';
import { table, time } from './format.js';
import { jsonObject } from './jobs.js';
import { maxResults } from './things.js';
import { UsageError, type CommandSpec } from './types.js';

interface Template {
  jobTemplateId: string;
  description?: string;
  versionNumber?: number;
  createdAt?: number;
}

export const templatesCommands: Record<string, CommandSpec> = {
  list: {
    usage: '[--max-results N]',
    summary: 'list job templates (ListJobTemplates, every page)',
    positionals: { min: 0, max: 0 },
    options: { 'max-results': { type: 'string' } },
    async run(ctx, _args, values) {
      const templates = await ctx.client.list<Template>('/job-templates', 'jobTemplates', {
        max: maxResults(values['max-results']),
      });
      if (ctx.json) ctx.printJson({ jobTemplates: templates });
      else {
        ctx.print(
          table(
            ['TEMPLATE', 'CREATED', 'DESCRIPTION'],
            templates.map((t) => [t.jobTemplateId, time(t.createdAt), t.description]),
          ),
        );
      }
      return 0;
    },
  },
  versions: {
    usage: '<jobTemplateId>',
    summary: "list a template's versions (ListJobTemplateVersions, fleetjobs extension)",
    positionals: { min: 1, max: 1 },
    async run(ctx, [id]) {
      const versions = await ctx.client.list<Template>(
        path`/job-templates/${id as string}/versions`,
        'versions',
      );
      if (ctx.json) ctx.printJson({ versions });
      else {
        ctx.print(
          table(
            ['VERSION', 'CREATED', 'DESCRIPTION'],
            versions.map((v) => [v.versionNumber, time(v.createdAt), v.description]),
          ),
        );
      }
      return 0;
    },
  },
  'create-version': {
    usage: '<jobTemplateId> --file FILE',
    summary:
      'add a version from a CreateJobTemplate body in a JSON file (CreateJobTemplateVersion, fleetjobs extension)',
    positionals: { min: 1, max: 1 },
    options: { file: { type: 'string' } },
    async run(ctx, [id], values) {
      if (typeof values.file !== 'string') throw new UsageError('--file is required');
      const body = jsonObject(await ctx.io.readFile(values.file), '--file');
      const res = await ctx.client.request<Template>('POST', path`/job-templates/${id as string}/versions`, {
        body,
      });
      if (ctx.json) ctx.printJson(res);
      else ctx.print(`created version ${res.versionNumber ?? ''} of job template ${res.jobTemplateId}`);
      return 0;
    },
  },
  export: {
    usage: '<jobTemplateId>... [--file FILE]',
    summary: 'export templates with every version as JSON, to stdout or FILE (fleetjobs extension)',
    positionals: { min: 1 },
    options: { file: { type: 'string' } },
    async run(ctx, ids, values) {
      const jobTemplates = [];
      for (const id of ids)
        jobTemplates.push(await ctx.client.request('GET', path`/job-templates/${id}/export`));
      const text = `${JSON.stringify({ jobTemplates }, null, 2)}\n`;
      if (typeof values.file === 'string') {
        await writeFile(values.file, text);
        if (!ctx.json) ctx.print(`exported ${ids.length} job template(s) to ${values.file}`);
      } else ctx.io.out.write(text);
      return 0;
    },
  },
  import: {
    usage: '--file FILE',
    summary: 'import templates exported by `templates export` (all or none; fleetjobs extension)',
    positionals: { min: 0, max: 0 },
    options: { file: { type: 'string' } },
    async run(ctx, _args, values) {
      if (typeof values.file !== 'string') throw new UsageError('--file is required');
      const body = jsonObject(await ctx.io.readFile(values.file), '--file');
      const res = await ctx.client.request<{ jobTemplates: Template[] }>('POST', '/job-templates/import', {
        body,
      });
      if (ctx.json) ctx.printJson(res);
      else {
        for (const t of res.jobTemplates) {
          ctx.print(`imported job template ${t.jobTemplateId} (latest version ${t.versionNumber ?? ''})`);
        }
      }
      return 0;
    },
  },
};
