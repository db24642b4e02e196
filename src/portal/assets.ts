// nhsuk-frontend's stylesheet, script and images, and the portal's own script, served from memory under
// a path that changes whenever their content does, so browsers may keep them for a year. Each is
// compressed once, on first request, not per request.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { NHSUK_FRONTEND_DIST } from './views.ts';

const NHSUK = join(NHSUK_FRONTEND_DIST, 'nhsuk');
const OWN = new URL('./static/', import.meta.url).pathname;
const YEAR_SECONDS = 365 * 24 * 3600;

const IMAGES = [
  'favicon.ico', 'favicon.svg', 'nhsuk-icon-mask.svg', 'nhsuk-icon-180.png',
  'nhsuk-icon-arrow-down.svg', 'nhsuk-icon-arrow-up-down.svg', 'nhsuk-icon-arrow-up.svg', 'nhsuk-icon-cross.svg',
];

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
};

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
  compressible: boolean;
  encoded?: { br: Buffer; gzip: Buffer };
}

export interface PortalAssets {
  /** Where the assets are served, e.g. /assets/10.6.1-1a2b3c4d. */
  path: string;
  register(app: FastifyInstance): void;
}

/**
 * nhsuk-frontend's stylesheet points at /assets/images/ and loads the Frutiger font from assets.nhs.uk;
 * the portal serves its images under the versioned path and allows no other origin, so the font faces go
 * (the stylesheet's own fallback, Arial, is used).
 */
function portalStylesheet(css: string, imagePath: string): string {
  return css.replace(/@font-face\{[^}]*assets\.nhs\.uk[^}]*\}/g, '').replaceAll('url(/assets/images/', `url(${imagePath}/`);
}

export function portalAssets(): PortalAssets {
  const nhsukVersion = JSON.parse(readFileSync(join(NHSUK_FRONTEND_DIST, '..', 'package.json'), 'utf8')).version as string;
  const sources: [string, Buffer][] = [
    ['nhsuk-frontend.min.js', readFileSync(join(NHSUK, 'nhsuk-frontend.min.js'))],
    ['portal.js', readFileSync(join(OWN, 'portal.js'))],
    ...IMAGES.map((name): [string, Buffer] => [`images/${name}`, readFileSync(join(NHSUK, 'assets', 'images', name))]),
  ];
  const css = readFileSync(join(NHSUK, 'nhsuk-frontend.min.css'), 'utf8');
  const version = `${nhsukVersion}-${createHash('sha256').update(css).update(Buffer.concat(sources.map(([, b]) => b))).digest('hex').slice(0, 8)}`;
  const path = `/assets/${version}`;
  sources.push(['nhsuk-frontend.min.css', Buffer.from(portalStylesheet(css, `${path}/images`))]);

  const table = new Map<string, Asset>();
  for (const [name, body] of sources) {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    table.set(name, { type: TYPES[ext], body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`, compressible: ext !== 'png' });
  }

  return {
    path,
    register(app) {
      app.get<{ Params: { version: string; '*': string } }>('/assets/:version/*', async (req, reply) => {
        const asset = req.params.version === version ? table.get(req.params['*']) : undefined;
        if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
        reply.type(asset.type).header('cache-control', `public, max-age=${YEAR_SECONDS}, immutable`).header('etag', asset.etag);
        if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        if (!asset.compressible) return reply.send(asset.body);
        reply.header('vary', 'accept-encoding');
        const accepted = String(req.headers['accept-encoding'] ?? '');
        const encoding = /\bbr\b/.test(accepted) ? 'br' : /\bgzip\b/.test(accepted) ? 'gzip' : undefined;
        if (!encoding) return reply.send(asset.body);
        asset.encoded ??= {
          br: brotliCompressSync(asset.body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
          gzip: gzipSync(asset.body, { level: 9 }),
        };
        return reply.header('content-encoding', encoding).send(asset.encoded[encoding]);
      });
    },
  };
}
