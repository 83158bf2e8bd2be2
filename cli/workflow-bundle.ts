// The workflow code bundle, built once per version of the compiled workflows and kept in the
// state directory: webpack takes seconds on a small machine, and every virnucpro command that
// runs workers would otherwise pay it again.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleOption } from '@temporalio/worker';
import type winston from 'winston';
import { packageRoot } from './config';
import { workflowsPath } from '../activities/steps/workers';

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : entry.name.endsWith('.js') ? [full] : [];
  });
}

/** Changes whenever the compiled workflows or the installed dependencies change. */
function bundleKey(): string {
  const hash = createHash('sha256');
  for (const file of filesUnder(path.dirname(workflowsPath)).sort()) hash.update(file).update(fs.readFileSync(file));
  const lock = path.join(packageRoot, 'package-lock.json');
  if (fs.existsSync(lock)) hash.update(fs.readFileSync(lock));
  return hash.digest('hex').slice(0, 20);
}

export async function cachedWorkflowBundle(stateDir: string, logger: winston.Logger): Promise<WorkflowBundleOption> {
  const codePath = path.join(stateDir, 'bundles', `workflows-${bundleKey()}.js`);
  if (!fs.existsSync(codePath)) {
    logger.debug('bundling the workflow code (once per version)');
    const { code } = await bundleWorkflowCode({
      workflowsPath,
      // webpack's report is long and only interesting when bundling fails (then it is an error).
      logger: new DefaultLogger('WARN', (entry) => logger.log(entry.level === 'ERROR' ? 'error' : 'debug', entry.message)),
    });
    fs.mkdirSync(path.dirname(codePath), { recursive: true });
    const tmp = `${codePath}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, codePath);
  }
  return { codePath };
}
