// The output folder of a prediction: results at the top, our state in `.virnucpro/` (the run it
// belongs to; by default also the run log and the step work folder with shards and shard
// results, which --work-dir can put elsewhere, e.g. on scratch). A folder that holds something
// else is never overwritten silently.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../args';
import { HIGHEST_SCORE_FILE, PREDICTION_FILE, SUMMARY_FILE } from '../../activities/outputs/prediction-outputs';
import { ID_MAP_FILE } from '../../activities/prepare/id-map';
import { REPORT_HTML, RUN_REPORT_JSON, RUN_REPORT_MD } from '../../activities/outputs/run-report';
import { TELEMETRY_FILE, TRACE_FILE } from '../../activities/outputs/trace';

const STATE_DIR = '.virnucpro';
const RUN_FILE = 'run.json';
const RESULT_FILES = [PREDICTION_FILE, HIGHEST_SCORE_FILE, SUMMARY_FILE, TRACE_FILE, TELEMETRY_FILE, ID_MAP_FILE, RUN_REPORT_JSON, RUN_REPORT_MD, REPORT_HTML];

/** Remove what a previous run put in `dir` (and nothing else the user keeps there). */
export function clearRunFiles(dir: string): void {
  for (const name of RESULT_FILES) fs.rmSync(path.join(dir, name), { force: true });
  fs.rmSync(path.join(dir, STATE_DIR), { recursive: true, force: true });
}

export class OutputFolder {
  readonly stateDir: string;
  /** Run log and step work folder. */
  readonly workRoot: string;
  readonly workDir: string;

  constructor(
    readonly dir: string,
    workRoot?: string,
  ) {
    this.stateDir = path.join(dir, STATE_DIR);
    this.workRoot = workRoot ?? this.stateDir;
    this.workDir = path.join(this.workRoot, 'work');
  }

  private recordedRun(): string | null {
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(this.stateDir, RUN_FILE), 'utf8')) as { workflowId?: unknown };
      return typeof parsed.workflowId === 'string' ? parsed.workflowId : null;
    } catch {
      return null;
    }
  }

  /**
   * Make the folder this run's. The same run may always come back (that is how a rerun attaches);
   * another run's folder needs --resume (continue there, reusing completed steps) or --force
   * (start over), and a folder that is not ours needs one of them too.
   */
  claim(workflowId: string, mode: { resume: boolean; force: boolean }): void {
    const entries = fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : [];
    if (fs.existsSync(this.dir) && !fs.statSync(this.dir).isDirectory()) throw new UsageError(`--output-dir ${this.dir}: exists and is not a folder`);
    const recorded = this.recordedRun();
    if (mode.force) {
      clearRunFiles(this.dir);
      fs.rmSync(this.workDir, { recursive: true, force: true });
    }
    else if (entries.length > 0 && recorded !== workflowId && !mode.resume) {
      const what = recorded ? 'holds the results of another run (other input or settings)' : 'already exists and was not written by virnucpro';
      throw new UsageError(`output folder ${this.dir} ${what}; add --resume to continue there, --force to replace its results, or choose another --output-dir`);
    }
    fs.mkdirSync(this.stateDir, { recursive: true });
    fs.mkdirSync(this.workRoot, { recursive: true });
    fs.writeFileSync(path.join(this.stateDir, RUN_FILE), JSON.stringify({ workflowId, claimed: new Date().toISOString() }) + '\n');
  }

  /** After success: shards and shard results are large and can be recomputed. */
  removeIntermediates(): void {
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}
