// Implementations by name. Workers register every implementation they may run; a DAG's process
// names an implementation here. Each helper adds its module's implementations to `allImplementations`.
import type { Implementation } from './steps/implementation';
import { selftestImplementations } from './selftest/implementations';
import { prepareImplementation } from './prepare/implementation';
import { embedShard } from './gpu/embed-shard';
import { writeOutputsImplementation } from './outputs/implementation';
import { importLegacy } from './legacy/import-step';

export class ActivityRegistry {
  private readonly byName = new Map<string, Implementation>();

  constructor(implementations: Implementation<any, any, any>[] = []) {
    for (const implementation of implementations) this.register(implementation);
  }

  register(implementation: Implementation<any, any, any>): this {
    if (this.byName.has(implementation.name)) throw new Error(`implementation "${implementation.name}" is registered twice`);
    this.byName.set(implementation.name, implementation as Implementation);
    return this;
  }

  get(name: string): Implementation {
    const implementation = this.byName.get(name);
    if (!implementation) throw new Error(`no implementation registered as "${name}" (known: ${[...this.byName.keys()].join(', ')})`);
    return implementation;
  }
}

/** Everything the `virnucpro worker` serves. */
export function allImplementations(): Implementation<any, any, any>[] {
  return [...selftestImplementations, prepareImplementation, importLegacy, embedShard, writeOutputsImplementation];
}
