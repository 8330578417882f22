import { clearRows, readRows, REPORT_FILE, writeReport } from "./report.js";
import { KNOBS } from "./knobs.js";

/** Starts the run with no rows; at the end writes reports/faults.md from the rows every scenario recorded. */
export default function setup() {
  clearRows();
  const started = Date.now();
  return () => {
    const rows = readRows();
    writeReport(rows, Date.now() - started, KNOBS);
    clearRows();
    console.log(`fault report: ${REPORT_FILE} (${rows.length} scenarios)`);
  };
}
