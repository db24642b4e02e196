// NEWS2 scoring: every chart boundary, the band edges, input rejection, the trend rule, and properties.
// Controls hazard H-001 in docs/clinical-safety/hazard-log.md.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  news2Band,
  news2Response,
  news2Trend,
  scoreAirOrOxygen,
  scoreConsciousness,
  scoreNews2,
  scorePulse,
  scoreRespirationRate,
  scoreSpo2Scale1,
  scoreSpo2Scale2,
  scoreSystolicBP,
  scoreTemperature,
  type Acvpu,
  type News2Input,
} from '../../src/monitoring/index.ts';

/** A patient with every parameter in the normal range: NEWS2 0. */
const NORMAL: News2Input = {
  respirationRate: 16,
  spo2: 97,
  supplementalOxygen: false,
  systolicBP: 130,
  pulse: 70,
  consciousness: 'A',
  temperature: 37.0,
};

function table(fn: (v: number) => number, rows: [number, number][]) {
  for (const [value, expected] of rows) {
    assert.equal(fn(value), expected, `${fn.name}(${value}) should be ${expected}`);
  }
}

describe('NEWS2 parameter boundaries (RCP Chart 1)', () => {
  it('respiration rate: ≤8 →3, 9–11 →1, 12–20 →0, 21–24 →2, ≥25 →3', () => {
    table(scoreRespirationRate, [
      [0, 3], [7, 3], [8, 3],
      [9, 1], [10, 1], [11, 1],
      [12, 0], [16, 0], [20, 0],
      [21, 2], [24, 2],
      [25, 3], [40, 3], [100, 3],
    ]);
  });

  it('SpO2 scale 1: ≤91 →3, 92–93 →2, 94–95 →1, ≥96 →0', () => {
    table(scoreSpo2Scale1, [
      [0, 3], [85, 3], [91, 3],
      [92, 2], [93, 2],
      [94, 1], [95, 1],
      [96, 0], [99, 0], [100, 0],
    ]);
  });

  it('SpO2 scale 2 on air: ≤83 →3, 84–85 →2, 86–87 →1, ≥88 →0', () => {
    table((v) => scoreSpo2Scale2(v, false), [
      [0, 3], [83, 3],
      [84, 2], [85, 2],
      [86, 1], [87, 1],
      [88, 0], [92, 0], [93, 0], [94, 0], [95, 0], [96, 0], [97, 0], [100, 0],
    ]);
  });

  it('SpO2 scale 2 on oxygen: ≤83 →3, 84–85 →2, 86–87 →1, 88–92 →0, 93–94 →1, 95–96 →2, ≥97 →3', () => {
    table((v) => scoreSpo2Scale2(v, true), [
      [0, 3], [83, 3],
      [84, 2], [85, 2],
      [86, 1], [87, 1],
      [88, 0], [90, 0], [92, 0],
      [93, 1], [94, 1],
      [95, 2], [96, 2],
      [97, 3], [100, 3],
    ]);
  });

  it('air or oxygen: oxygen →2, air →0', () => {
    assert.equal(scoreAirOrOxygen(true), 2);
    assert.equal(scoreAirOrOxygen(false), 0);
  });

  it('systolic BP: ≤90 →3, 91–100 →2, 101–110 →1, 111–219 →0, ≥220 →3', () => {
    table(scoreSystolicBP, [
      [0, 3], [60, 3], [90, 3],
      [91, 2], [100, 2],
      [101, 1], [110, 1],
      [111, 0], [160, 0], [219, 0],
      [220, 3], [260, 3], [350, 3],
    ]);
  });

  it('pulse: ≤40 →3, 41–50 →1, 51–90 →0, 91–110 →1, 111–130 →2, ≥131 →3', () => {
    table(scorePulse, [
      [0, 3], [30, 3], [40, 3],
      [41, 1], [50, 1],
      [51, 0], [70, 0], [90, 0],
      [91, 1], [110, 1],
      [111, 2], [130, 2],
      [131, 3], [180, 3], [300, 3],
    ]);
  });

  it('consciousness: A →0; new confusion, voice, pain, unresponsive →3', () => {
    assert.equal(scoreConsciousness('A'), 0);
    for (const level of ['C', 'V', 'P', 'U'] as const) assert.equal(scoreConsciousness(level), 3, level);
  });

  it('temperature: ≤35.0 →3, 35.1–36.0 →1, 36.1–38.0 →0, 38.1–39.0 →1, ≥39.1 →2', () => {
    table(scoreTemperature, [
      [10, 3], [33.5, 3], [35.0, 3],
      [35.1, 1], [35.5, 1], [36.0, 1],
      [36.1, 0], [37.0, 0], [38.0, 0],
      [38.1, 1], [38.5, 1], [39.0, 1],
      [39.1, 2], [40.5, 2], [45, 2],
    ]);
  });

  it('temperature between chart rows is placed by the row upper bound', () => {
    table(scoreTemperature, [[35.04, 1], [36.05, 0], [38.05, 1], [39.05, 2]]);
  });
});

describe('NEWS2 aggregate, bands and response', () => {
  it('a normal set of observations scores 0, low band, 12-hourly monitoring', () => {
    const r = scoreNews2(NORMAL);
    assert.equal(r.total, 0);
    assert.equal(r.band, 'low');
    assert.equal(r.anySingleParameterScored3, false);
    assert.equal(r.spo2Scale, 1);
    assert.equal(r.response.monitoringFrequency, 'Minimum 12 hourly');
    assert.deepEqual(r.response.clinicalResponse, ['Continue routine NEWS monitoring']);
  });

  it('scores a worked example parameter by parameter', () => {
    const r = scoreNews2({
      respirationRate: 22, // 2
      spo2: 93, // 2 (scale 1)
      supplementalOxygen: true, // 2
      systolicBP: 105, // 1
      pulse: 112, // 2
      consciousness: 'A', // 0
      temperature: 38.4, // 1
    });
    assert.deepEqual(r.scores, { respirationRate: 2, spo2: 2, airOrOxygen: 2, systolicBP: 1, pulse: 2, consciousness: 0, temperature: 1 });
    assert.equal(r.total, 10);
    assert.equal(r.band, 'high');
  });

  it('uses scale 2 only when asked', () => {
    const input = { ...NORMAL, spo2: 89 };
    assert.equal(scoreNews2(input).scores.spo2, 3);
    assert.equal(scoreNews2({ ...input, spo2Scale2: true }).scores.spo2, 0);
    assert.equal(scoreNews2({ ...input, spo2Scale2: true }).spo2Scale, 2);
    // Over-oxygenation on scale 2 scores; the same saturation on air does not.
    assert.equal(scoreNews2({ ...NORMAL, spo2: 97, spo2Scale2: true, supplementalOxygen: true }).scores.spo2, 3);
    assert.equal(scoreNews2({ ...NORMAL, spo2: 97, spo2Scale2: true, supplementalOxygen: false }).scores.spo2, 0);
  });

  it('band edges: 0–4 low, 5–6 medium, ≥7 high', () => {
    const expected: Record<number, string> = { 0: 'low', 1: 'low', 2: 'low', 3: 'low', 4: 'low', 5: 'medium', 6: 'medium', 7: 'high', 8: 'high', 20: 'high' };
    for (const [total, band] of Object.entries(expected)) assert.equal(news2Band(Number(total)), band, `total ${total}`);
  });

  it('a single red score (3) in a total of 3 or 4 is low-medium; the higher band wins from 5 upwards', () => {
    assert.equal(news2Band(3, true), 'low-medium');
    assert.equal(news2Band(4, true), 'low-medium');
    assert.equal(news2Band(5, true), 'medium');
    assert.equal(news2Band(6, true), 'medium');
    assert.equal(news2Band(7, true), 'high');
  });

  it('band edges reached from real observations', () => {
    // 4: RR 21 (2) + pulse 111 (2) → low
    const four = scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 111 });
    assert.equal(four.total, 4);
    assert.equal(four.band, 'low');
    // 3 from a single parameter: new confusion → low-medium
    const red = scoreNews2({ ...NORMAL, consciousness: 'C' });
    assert.equal(red.total, 3);
    assert.equal(red.anySingleParameterScored3, true);
    assert.equal(red.band, 'low-medium');
    assert.equal(red.response.monitoringFrequency, 'Minimum 1 hourly');
    // 5: RR 21 (2) + pulse 111 (2) + temp 38.1 (1) → medium
    const five = scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 111, temperature: 38.1 });
    assert.equal(five.total, 5);
    assert.equal(five.band, 'medium');
    // 6 → medium; 7 → high
    assert.equal(scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 111, temperature: 39.1 }).band, 'medium');
    const seven = scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 111, temperature: 39.1, systolicBP: 110 });
    assert.equal(seven.total, 7);
    assert.equal(seven.band, 'high');
    assert.equal(seven.response.monitoringFrequency, 'Continuous monitoring of vital signs');
  });

  it('response text follows the RCP chart for each band', () => {
    assert.equal(news2Response(2).monitoringFrequency, 'Minimum 4–6 hourly');
    assert.match(news2Response(2).clinicalResponse[0], /Inform registered nurse, who must assess the patient/);
    assert.match(news2Response(3, true).clinicalResponse[0], /inform medical team caring for the patient/);
    assert.match(news2Response(5).clinicalResponse.join(' '), /urgent assessment by a clinician or team with core competencies/);
    assert.match(news2Response(7).clinicalResponse.join(' '), /critical care competencies/);
    assert.match(news2Response(7).clinicalResponse.join(' '), /level 2 or 3/);
  });
});

describe('NEWS2 rejects impossible input, naming the field', () => {
  const cases: [Partial<Record<keyof News2Input, unknown>>, RegExp][] = [
    [{ respirationRate: -1 }, /respirationRate/],
    [{ respirationRate: Number.NaN }, /respirationRate/],
    [{ respirationRate: 16.5 }, /respirationRate.*whole number/],
    [{ respirationRate: 101 }, /respirationRate/],
    [{ spo2: 101 }, /spo2/],
    [{ spo2: -3 }, /spo2/],
    [{ spo2: 95.5 }, /spo2/],
    [{ spo2: Number.POSITIVE_INFINITY }, /spo2/],
    [{ systolicBP: -10 }, /systolicBP/],
    [{ systolicBP: 400 }, /systolicBP/],
    [{ pulse: Number.NaN }, /pulse/],
    [{ pulse: -60 }, /pulse/],
    [{ pulse: '80' }, /pulse/],
    [{ temperature: 98.6 }, /temperature/], // Fahrenheit
    [{ temperature: -1 }, /temperature/],
    [{ temperature: Number.NaN }, /temperature/],
    [{ consciousness: 'X' }, /consciousness/],
    [{ consciousness: 'alert' }, /consciousness/],
    [{ supplementalOxygen: undefined }, /supplementalOxygen/],
    [{ supplementalOxygen: 'yes' }, /supplementalOxygen/],
    [{ spo2Scale2: 'yes' }, /spo2Scale2/],
  ];
  for (const [patch, message] of cases) {
    it(`rejects ${JSON.stringify(patch, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, () => {
      assert.throws(() => scoreNews2({ ...NORMAL, ...patch } as News2Input), message);
    });
  }

  it('accepts the extremes of the plausible range', () => {
    assert.doesNotThrow(() => scoreNews2({ ...NORMAL, respirationRate: 0, spo2: 0, systolicBP: 0, pulse: 0, temperature: 10 }));
    assert.doesNotThrow(() => scoreNews2({ ...NORMAL, respirationRate: 100, spo2: 100, systolicBP: 350, pulse: 300, temperature: 45 }));
  });

  it('rejects impossible totals in band and trend helpers', () => {
    assert.throws(() => news2Band(21), /total/);
    assert.throws(() => news2Band(-1), /total/);
    assert.throws(() => news2Band(2.5), /total/);
    assert.throws(() => news2Trend([1, Number.NaN], 3), /previousTotals\[1\]/);
    assert.throws(() => news2Trend([1], -2), /current/);
  });
});

describe('news2Trend', () => {
  it('no history: not rising', () => {
    const t = news2Trend([], 6);
    assert.equal(t.rising, false);
    assert.equal(t.currentBand, 'medium');
  });

  it('flags a rise of 2 or more since the last score', () => {
    const t = news2Trend([1, 1], 3);
    assert.equal(t.rising, true);
    assert.equal(t.changeFromPrevious, 2);
  });

  it('does not flag a rise of 1 within the same band', () => {
    const t = news2Trend([1, 1], 2);
    assert.equal(t.rising, false);
    assert.deepEqual(t.reasons, []);
  });

  it('flags a gradual climb of 2 above the lowest recent score', () => {
    const t = news2Trend([0, 1], 2);
    assert.equal(t.rising, true);
    assert.equal(t.changeFromBaseline, 2);
    assert.match(t.reasons.join(' '), /lowest recent score/);
  });

  it('flags entering a higher band even by one point', () => {
    const t = news2Trend([4], 5);
    assert.equal(t.rising, true);
    assert.equal(t.previousBand, 'low');
    assert.equal(t.currentBand, 'medium');
    assert.equal(news2Trend([6], 7).rising, true);
  });

  it('sees a new red score (low → low-medium) when given full results', () => {
    const before = scoreNews2({ ...NORMAL, respirationRate: 21 }); // 2, low
    const after = scoreNews2({ ...NORMAL, consciousness: 'C' }); // 3, low-medium
    const t = news2Trend([before], after);
    assert.equal(t.rising, true);
    assert.equal(t.currentBand, 'low-medium');
  });

  it('does not flag an improving or stable patient', () => {
    assert.equal(news2Trend([6, 5], 4).rising, false);
    assert.equal(news2Trend([3, 3, 3], 3).rising, false);
  });
});

// ---- properties ---------------------------------------------------------------------------------

const acvpu = fc.constantFrom<Acvpu>('A', 'C', 'V', 'P', 'U');
const temperature = fc.integer({ min: 100, max: 450 }).map((t) => t / 10);
const input: fc.Arbitrary<News2Input> = fc.record({
  respirationRate: fc.integer({ min: 0, max: 100 }),
  spo2: fc.integer({ min: 0, max: 100 }),
  spo2Scale2: fc.boolean(),
  supplementalOxygen: fc.boolean(),
  systolicBP: fc.integer({ min: 0, max: 350 }),
  pulse: fc.integer({ min: 0, max: 300 }),
  consciousness: acvpu,
  temperature,
});

/**
 * For each numeric parameter: the range the chart scores 0, and the plausible limits.
 * SpO2's normal range depends on the scale and oxygen: on scale 1, or scale 2 on air, any saturation at or
 * above the lower normal bound scores 0, so "further from normal" is only downwards.
 */
function normalRange(field: 'respirationRate' | 'spo2' | 'systolicBP' | 'pulse' | 'temperature', i: News2Input): [number, number] {
  switch (field) {
    case 'respirationRate': return [12, 20];
    case 'systolicBP': return [111, 219];
    case 'pulse': return [51, 90];
    case 'temperature': return [36.1, 38.0];
    case 'spo2':
      if (!i.spo2Scale2) return [96, 100];
      return i.supplementalOxygen ? [88, 92] : [88, 100];
  }
}
const LIMITS = { respirationRate: [0, 100], spo2: [0, 100], systolicBP: [0, 350], pulse: [0, 300], temperature: [10, 45] } as const;

describe('NEWS2 properties (fast-check)', () => {
  it('the total is the sum of the parameter scores, and the band follows from total and red score', () => {
    fc.assert(
      fc.property(input, (i) => {
        const r = scoreNews2(i);
        const parts = Object.values(r.scores);
        assert.equal(r.total, parts.reduce((a, b) => a + b, 0));
        assert.ok(parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 3));
        assert.equal(r.anySingleParameterScored3, parts.includes(3));
        assert.equal(r.band, news2Band(r.total, r.anySingleParameterScored3));
        assert.ok(r.total >= 0 && r.total <= 20);
      }),
      { numRuns: 2000 },
    );
  });

  for (const field of ['respirationRate', 'spo2', 'systolicBP', 'pulse', 'temperature'] as const) {
    it(`moving ${field} further from normal never lowers its score or the total`, () => {
      // Mostly small steps, so that moves across a single chart row are well covered.
      const whole = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 120 }), weight: 1 });
      const step = field === 'temperature' ? whole.map((n) => n / 10) : whole;
      fc.assert(
        fc.property(input, step, fc.boolean(), (i, delta, upIfNormal) => {
          const [lo, hi] = normalRange(field, i);
          const v = i[field];
          const direction = v > hi ? 1 : v < lo ? -1 : upIfNormal ? 1 : -1;
          const [min, max] = LIMITS[field];
          let moved = Math.round((v + direction * delta) * 10) / 10;
          moved = Math.min(max, Math.max(min, moved));
          const before = scoreNews2(i);
          const after = scoreNews2({ ...i, [field]: moved });
          const key = field === 'spo2' ? 'spo2' : field;
          assert.ok(after.scores[key] >= before.scores[key], `${field} ${v} → ${moved}: ${before.scores[key]} → ${after.scores[key]}`);
          assert.ok(after.total >= before.total);
        }),
        { numRuns: 1000 },
      );
    });
  }

  it('losing alertness or starting oxygen never lowers the score', () => {
    fc.assert(
      fc.property(input, acvpu, (i, level) => {
        const alert = scoreNews2({ ...i, consciousness: 'A' });
        assert.ok(scoreNews2({ ...i, consciousness: level }).total >= alert.total);
        const air = scoreNews2({ ...i, supplementalOxygen: false });
        assert.ok(scoreNews2({ ...i, supplementalOxygen: true }).total >= air.total);
      }),
      { numRuns: 1000 },
    );
  });

  it('the band never goes down as the total goes up', () => {
    const rank = { low: 0, 'low-medium': 1, medium: 2, high: 3 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 19 }), fc.boolean(), (t, red) => {
        assert.ok(rank[news2Band(t + 1, red)] >= rank[news2Band(t, red)]);
        assert.ok(rank[news2Band(t, true)] >= rank[news2Band(t, false)]);
      }),
    );
  });
});
