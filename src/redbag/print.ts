// The printable pack: a PDF (pdfkit) with a one-page summary first, then every section, from the same rows
// the screen shows (the Composition's section narratives), so print and screen cannot disagree.
import PDFDocument from 'pdfkit';
import { sectionsOfPack, type PackRow } from './pack.ts';
import type { Resource } from './recordCalls.ts';

const SUMMARY_VALUE_LIMIT = 280;

/** The standard PDF fonts encode WinAnsi only: anything else would print as the wrong glyph. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7E\u00A0-\u00FF\u2013\u2014\u2018\u2019\u201C\u201D\u2022\u2026\n]/g, '?');
}

export interface PrintStatus {
  /** "Sent to hospital", "Received by the hospital", … */
  step: string;
  /** Each step so far, oldest first. */
  history: string[];
}

export function transferPackPdf(bundle: Resource, status?: PrintStatus): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: 48, info: { Title: printable(bundle.entry?.[0]?.resource?.title ?? 'Red bag transfer pack'), Author: 'CareBridge' } });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const sections = sectionsOfPack(bundle);
  const composition = bundle.entry?.[0]?.resource ?? {};
  const rows = (list: PackRow[], limit?: number) => {
    for (const r of list) {
      const value = limit && r.value.length > limit ? `${r.value.slice(0, limit)}... (continued in the sections)` : r.value;
      doc.font('Helvetica-Bold').fontSize(10).text(printable(r.label), { continued: false });
      doc.font('Helvetica').fontSize(10).text(printable(value || '-'), { indent: 12 });
      doc.moveDown(0.3);
    }
  };
  doc.font('Helvetica-Bold').fontSize(16).text(printable(composition.title ?? 'Care home to hospital transfer'));
  doc.font('Helvetica').fontSize(9).text(printable(`Red bag transfer pack. ${composition.status === 'final' ? 'As sent' : 'DRAFT - not sent'} ${composition.date ?? ''}${status ? `. Status: ${status.step}` : ''}`));
  if ((bundle.meta?.tag ?? []).some((t: { code?: string }) => t.code === 'HTEST')) doc.font('Helvetica-Bold').fontSize(9).text('SYNTHETIC TEST DATA - NOT A REAL PERSON');
  doc.moveDown(0.6);
  const [summary, ...rest] = sections;
  if (summary) rows(summary.rows, SUMMARY_VALUE_LIMIT);
  for (const s of rest) {
    if (s === rest[0]) doc.addPage();
    else doc.moveDown(0.6);
    doc.font('Helvetica-Bold').fontSize(13).text(printable(s.title));
    doc.moveDown(0.2);
    rows(s.rows);
  }
  if (status?.history.length) {
    doc.moveDown(0.6);
    doc.font('Helvetica-Bold').fontSize(13).text('Progress');
    for (const h of status.history) doc.font('Helvetica').fontSize(10).text(printable(h));
  }
  doc.end();
  return done;
}
