import { describe, expect, it } from 'vitest';
import { ActionIdPattern, actionIdTime, newActionId, pooledRandomFraction } from '../../lambdas/shared/ids';

describe('action ids', () => {
  it('are act_ + a ULID of the given time, strictly increasing within one millisecond', () => {
    const at = Date.UTC(2000, 0, 1);
    const ids = Array.from({ length: 2_000 }, () => newActionId(at));
    for (const id of ids) {
      expect(id).toMatch(ActionIdPattern);
      expect(actionIdTime(id)).toBe(at);
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('draw their random part from the pool across its refills, every character about as often', () => {
    // 10,000 fractions cross the 4 KiB pool twice; each stays in [0, 1) and on a 1/256 grid.
    const counts = new Array<number>(32).fill(0);
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const f = pooledRandomFraction();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      expect(Number.isInteger(f * 256)).toBe(true);
      counts[Math.floor(f * 32)]!++;
    }
    // Each of the 32 characters expects 312.5 draws (sd ≈ 17.4): 6 sd either side fails
    // only on a broken source, not by chance.
    for (const c of counts) {
      expect(c).toBeGreaterThan(208);
      expect(c).toBeLessThan(417);
    }
  });

  it('differ between ids minted in different milliseconds (fresh randomness, not a counter)', () => {
    const at = Date.UTC(2000, 0, 1);
    const randomParts = Array.from({ length: 200 }, (_, i) => newActionId(at + 1_000 + i).slice('act_'.length + 10));
    expect(new Set(randomParts).size).toBe(randomParts.length);
  });
});
