import { describe, expect, it } from "vitest";
import { judgeFlat, type RssSample } from "../bench/phases/long.js";

/** RSS sampled every 2 s: a garbage-collected heap saws between its floor and a peak. */
function sawtooth(floorAt: (second: number) => number, peaks: number[]): RssSample[] {
  const samples: RssSample[] = [];
  for (let i = 0; i < 60; i++) {
    const cycle = Math.floor(i / 10);
    const rise = (i % 10) / 9; // ten samples per cycle, from the floor up to the cycle's peak
    const floor = floorAt(i * 2);
    samples.push({ seconds: i * 2, delivered: i * 2_000, rssMb: Math.round(floor + rise * (peaks[cycle]! - 190)) });
  }
  return samples;
}

describe("bench: the long run's RSS verdict", () => {
  it("calls a sawtooth whose peaks differ between collections but whose floor holds flat", () => {
    // Peaks like those of a 2 × AMD EPYC run (281, 222, 219, 279, 273, 250 MB) over a 190 MB floor.
    const verdict = judgeFlat(sawtooth(() => 190, [281, 222, 219, 279, 273, 250]));
    expect(verdict.lastQuarterPeakMb - verdict.secondQuarterPeakMb).toBeGreaterThan(verdict.allowedGrowthMb);
    expect(verdict.secondQuarterFloorMb).toBe(190);
    expect(verdict.lastQuarterFloorMb).toBe(190);
    expect(verdict.flat).toBe(true);
  });

  it("calls a heap whose floor rises growing, however even its peaks", () => {
    // 1 MB retained every 2 s: the floor climbs ~45 MB from the second quarter to the last.
    const verdict = judgeFlat(sawtooth((second) => 190 + second / 2, [280, 280, 280, 280, 280, 280]));
    expect(verdict.lastQuarterFloorMb - verdict.secondQuarterFloorMb).toBeGreaterThan(verdict.allowedGrowthMb);
    expect(verdict.flat).toBe(false);
  });
});
