import type { ConnectorDefinition, ToolDefinition } from '../tools/sdk';

/**
 * The tool registry as the domain sees it: which tools exist, their declarations (schemas,
 * tier, compensation, money, PII) and their connectors. The concrete registry, with every
 * vendor client, is tools/registry.ts; the composition root hands it to each capability.
 */

/** A tool as registered: its full name and declaration, and the connector that serves it. */
export interface RegisteredTool {
  /** `<connector>.<tool>` */
  fullName: string;
  connector: ConnectorDefinition<any>;
  tool: ToolDefinition<any, any, any>;
}

export interface ToolRegistry {
  /** Looks a tool up by its full name (`travel.hold_seat`). */
  find(fullName: string): RegisteredTool | undefined;
  /** All tools, in registration order. */
  all(): readonly RegisteredTool[];
  /** The compensating tool of a registered tool, if it has one. */
  compensationOf(entry: RegisteredTool): RegisteredTool | undefined;
}
