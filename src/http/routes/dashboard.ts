import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** Scripts, styles and images from this server only; the page makes its API calls to it too. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** dist/dashboard of the package this module is part of (src/ under tsx, dist/src/ once compiled). */
function builtDashboardDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'dashboard');
}

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const assetsDir = join(dir, 'assets');
  if (!existsSync(assetsDir)) return assets;
  for (const name of readdirSync(assetsDir)) {
    const type = TYPES[extname(name)];
    if (type !== undefined) assets.set(name, { type, body: readFileSync(join(assetsDir, name)) });
  }
  return assets;
}

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>fleetjobs</title>
<p>The dashboard is not built: run <code>npm run build</code> (it writes dist/dashboard), then restart.</p></html>`;

/**
 * [protocol §5] The operator dashboard at `/`: the Vite build of dashboard/ (a Preact app), read into memory once
 * at start. Its files are public (they hold no fleet data); every API call the page makes carries the
 * operator key. Asset names carry a content hash, so they are cached for good and index.html never.
 */
export function dashboardRoutes(options: { dir?: string } = {}): FastifyPluginAsync {
  const dir = options.dir ?? builtDashboardDir();
  return async (app) => {
    const indexFile = join(dir, 'index.html');
    const index = existsSync(indexFile) ? readFileSync(indexFile) : undefined;
    const assets = loadAssets(dir);
    const secure = (reply: FastifyReply) =>
      reply
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('content-security-policy', CSP);

    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      secure(reply)
        .code(index === undefined ? 503 : 200)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(index ?? NOT_BUILT),
    );

    app.get<{ Params: { file: string } }>(
      '/assets/:file',
      { schema: { hide: true } },
      async (request, reply) => {
        const asset = assets.get(request.params.file);
        if (asset === undefined) {
          return secure(reply).code(404).type('text/plain; charset=utf-8').send('no such dashboard file');
        }
        return secure(reply)
          .type(asset.type)
          .header('cache-control', 'public, max-age=31536000, immutable')
          .send(asset.body);
      },
    );
  };
}
