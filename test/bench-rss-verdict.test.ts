import { describe, expect, it } from "vitest";
import { judgeFlat, type RssSample } from "../bench/phases/long.js";

/**
 * Worker RSS (MB) every 2 s over two 120-s long runs on 2 × AMD EPYC, neither heap growing: in the
 * first the last quarter's peak sits 51 MB above the second's; in the second its floor 22 MB above.
 */
const RUNS = {
  peaksApart: [
    263.2, 270.2, 280.6, 218.7, 219.9, 178.8, 184, 200.3, 213.6, 227.1, 239.8, 250, 265.5, 279.3, 221.6, 221.6, 221.6, 190.8, 190.8, 191.7, 191.7, 197.8, 194.6, 194.6,
    204.6, 218.7, 207.2, 207.3, 207.4, 205.4, 205.4, 205.5, 190.1, 190.1, 191.4, 206, 218.3, 232.9, 248.3, 212.8, 212.8, 212.9, 212.9, 225.9, 242.1, 257.3, 272.5, 224.9,
    225, 225.2, 203.8, 203.9, 203.9, 204, 221.7, 207.1, 188.4, 188.4, 193, 207.1, 222.3,
  ],
  floorsApart: [
    260.7, 267.2, 281.8, 257.8, 257.8, 220.7, 187.1, 187.2, 192.6, 205.2, 216.5, 206.4, 206.4, 206.5, 199.6, 199.6, 199.6, 208.6, 224.5, 239.2, 251.9, 268.8, 221.9, 221.9,
    222.3, 222.3, 222.3, 227.7, 242.1, 256.6, 227.1, 227.2, 227.2, 204.4, 204.4, 204.4, 204.4, 217.1, 229.3, 242.4, 221, 221, 221.3, 221.3, 221.4, 221.4, 232.6, 243.8,
    223.1, 223.1, 223.1, 223.2, 223.4, 224.7, 237, 250, 262, 230.5, 230.5, 230.6, 230.7,
  ],
};

const samples = (rss: number[], leakPerSampleMb = 0): RssSample[] => rss.map((mb, i) => ({ seconds: i * 2, delivered: i * 2_000, rssMb: mb + i * leakPerSampleMb }));

describe("bench: the long run's RSS verdict", () => {
  it("calls flat a sawtooth whose peaks, or whose floors, differ between quarters", () => {
    const peaks = judgeFlat(samples(RUNS.peaksApart));
    expect(peaks.lastQuarterPeakMb - peaks.secondQuarterPeakMb).toBeGreaterThan(50);
    expect(peaks.flat).toBe(true);
    const floors = judgeFlat(samples(RUNS.floorsApart));
    expect(floors.lastQuarterFloorMb - floors.secondQuarterFloorMb).toBeGreaterThan(20); // a floor verdict (16 MB or 10 %) called it growing
    expect(floors.flat).toBe(true);
  });

  it("calls growing the same runs with 1 MB retained every 2 s (~30 MB from the second quarter to the last)", () => {
    for (const rss of Object.values(RUNS)) {
      const verdict = judgeFlat(samples(rss, 1));
      expect(verdict.lastQuarterMedianMb - verdict.secondQuarterMedianMb).toBeGreaterThan(verdict.allowedGrowthMb);
      expect(verdict.flat).toBe(false);
    }
  });
});
