import type { ConnectorDefinition, ToolDefinition } from './sdk';
import { echo } from './echo/index';
import { iam } from './iam/index';
import { payments } from './payments/index';
import { procurement } from './procurement/index';
import { travel } from './travel/index';

/**
 * Every connector Airlock offers. Adding a connector is one folder under connectors/ and one
 * line here; the catalog, the policy engine and the CDK stack read this list.
 */
export const connectors: readonly ConnectorDefinition<any>[] = [
  echo,
  travel,
  payments,
  procurement,
  iam,
];

export interface RegisteredTool {
  /** `<connector>.<tool>` */
  fullName: string;
  connector: ConnectorDefinition<any>;
  tool: ToolDefinition<any, any, any>;
}

const byName = new Map<string, RegisteredTool>();
for (const connector of connectors) {
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

/** Looks a tool up by its full name (`travel.hold_seat`). */
export function findTool(fullName: string): RegisteredTool | undefined {
  return byName.get(fullName);
}

/** All tools, in registration order. */
export function allTools(): RegisteredTool[] {
  return [...byName.values()];
}

/** The compensating tool of a registered tool, if it has one. */
export function compensationOf(entry: RegisteredTool): RegisteredTool | undefined {
  const comp = entry.tool.compensation;
  return comp ? byName.get(`${entry.connector.name}.${comp.tool}`) : undefined;
}
