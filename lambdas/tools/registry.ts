import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import type { ConnectorDefinition } from './sdk';
import { echo } from './echo/index';
import { iam } from './iam/index';
import { payments } from './payments/index';
import { procurement } from './procurement/index';
import { travel } from './travel/index';

/**
 * Every connector Airlock offers. Adding a connector is one folder under tools/ and one line
 * here; the catalog, the policy engine, the saga and the CDK stack read this list.
 */
export const connectors: readonly ConnectorDefinition<any>[] = [echo, travel, payments, procurement, iam];

/** A registry over `list`; refuses duplicate tools and compensations that do not exist. */
export function createToolRegistry(list: readonly ConnectorDefinition<any>[]): ToolRegistry {
  const byName = new Map<string, RegisteredTool>();
  for (const connector of list) {
    for (const tool of connector.tools) {
      const fullName = `${connector.name}.${tool.name}`;
      if (byName.has(fullName)) throw new Error(`Duplicate tool ${fullName}`);
      byName.set(fullName, { fullName, connector, tool });
    }
  }
  for (const entry of byName.values()) {
    const comp = entry.tool.compensation;
    if (comp && !byName.has(`${entry.connector.name}.${comp.tool}`)) {
      throw new Error(`${entry.fullName} names a compensation ${comp.tool} that does not exist`);
    }
  }
  const all = [...byName.values()];
  return {
    find: (fullName) => byName.get(fullName),
    all: () => all,
    compensationOf: (entry) => {
      const comp = entry.tool.compensation;
      return comp ? byName.get(`${entry.connector.name}.${comp.tool}`) : undefined;
    },
  };
}

/** The registry of every connector above: what the composition root hands the capabilities. */
export const toolRegistry: ToolRegistry = createToolRegistry(connectors);
