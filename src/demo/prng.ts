// A small seeded PRNG for the demo dataset. Each part of the dataset draws from its own stream, derived
// from the seed and a label, so that (for example) changing the number of observation days does not
// change residents' names. Never Math.random: the same seed must give byte-identical output.

/** 32-bit FNV-1a of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Prng {
  private state: number;

  constructor(seed: number, ...labels: (string | number)[]) {
    this.state = fnv1a(`${seed >>> 0}:${labels.join('/')}`) || 0x9e3779b9;
  }

  /** Mulberry32: uniform in [0, 1). */
  next = (): number => {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  /** Integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** Approximately normal (sum of uniforms), mean 0, standard deviation 1. */
  normal(): number {
    let s = 0;
    for (let i = 0; i < 6; i++) s += this.next();
    return (s - 3) * Math.SQRT2;
  }

  /** Up to `count` distinct items, chosen with probability proportional to weight. */
  weightedSample<T>(items: readonly { item: T; weight: number }[], count: number): T[] {
    const pool = items.filter((i) => i.weight > 0).slice();
    const chosen: T[] = [];
    while (chosen.length < count && pool.length > 0) {
      const total = pool.reduce((a, b) => a + b.weight, 0);
      let r = this.next() * total;
      let index = 0;
      for (; index < pool.length - 1; index++) {
        r -= pool[index].weight;
        if (r < 0) break;
      }
      chosen.push(pool[index].item);
      pool.splice(index, 1);
    }
    return chosen;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
