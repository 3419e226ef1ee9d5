import { describe, expect, it, vi } from 'vitest';
import { toolCatalog } from '../../lambdas/tools/catalog';
import { toolRegistry } from '../../lambdas/tools/registry';

const expected: Record<string, { tier: string; compensation: string | null }> = {
  'travel.search_flights': { tier: 'read', compensation: null },
  'travel.hold_seat': { tier: 'commit', compensation: 'travel.release_hold' },
  'travel.release_hold': { tier: 'commit', compensation: null },
  'travel.book_flight': { tier: 'commit', compensation: 'travel.cancel_booking' },
  'travel.change_booking': { tier: 'commit', compensation: 'travel.change_booking' },
  'travel.cancel_booking': { tier: 'commit', compensation: null },
  'travel.get_booking': { tier: 'read', compensation: null },
  'payments.authorize': { tier: 'commit', compensation: 'payments.void_authorization' },
  'payments.void_authorization': { tier: 'commit', compensation: null },
  'payments.capture': { tier: 'commit', compensation: 'payments.refund' },
  'payments.refund': { tier: 'commit', compensation: null },
  'payments.get_payment': { tier: 'read', compensation: null },
  'procurement.search_catalog': { tier: 'read', compensation: null },
  'procurement.place_order': { tier: 'commit', compensation: 'procurement.cancel_order' },
  'procurement.update_order': { tier: 'commit', compensation: 'procurement.update_order' },
  'procurement.cancel_order': { tier: 'commit', compensation: null },
  'procurement.get_order': { tier: 'read', compensation: null },
  'iam.get_role_assignments': { tier: 'read', compensation: null },
  'iam.grant_role': { tier: 'commit', compensation: 'iam.revoke_role' },
  'iam.revoke_role': { tier: 'commit', compensation: null },
};

describe('toolCatalog', () => {
  it('lists every connector tool with its tier and compensation', () => {
    // Prepare / Act
    const catalog = toolCatalog(toolRegistry);
    const byName = new Map(catalog.map((e) => [e.name, e]));
    // Assess
    for (const [name, want] of Object.entries(expected)) {
      const entry = byName.get(name);
      expect(entry, name).toBeDefined();
      expect({ tier: entry!.tier, compensation: entry!.compensation }, name).toEqual(want);
    }
  });

  it('publishes JSON Schemas for input and output; inputs forbid unknown fields', () => {
    for (const entry of toolCatalog(toolRegistry).filter((e) => e.name in expected)) {
      expect(entry.inputSchema.type, entry.name).toBe('object');
      expect(entry.inputSchema.additionalProperties, entry.name).toBe(false);
      expect(entry.outputSchema.type, entry.name).toBe('object');
      expect(entry.description.length, entry.name).toBeGreaterThan(20);
    }
  });

  it('marks personal data fields', () => {
    const pii = (name: string) => toolCatalog(toolRegistry).find((e) => e.name === name)!.pii;
    expect(pii('travel.book_flight').input).toEqual(expect.arrayContaining(['travelers.*.passportNumber', 'contact.email']));
    expect(pii('procurement.place_order').input).toContain('shipTo.street');
    expect(pii('payments.authorize').input).toContain('customerEmail');
  });

  it('every commit tool that is not an undo names a compensation, or is a terminal action', () => {
    const terminal = new Set(['travel.cancel_booking', 'travel.release_hold', 'payments.void_authorization', 'payments.refund', 'procurement.cancel_order', 'iam.revoke_role']);
    for (const entry of toolCatalog(toolRegistry).filter((e) => e.name in expected && e.tier === 'commit')) {
      expect(entry.compensation !== null || terminal.has(entry.name), entry.name).toBe(true);
    }
  });
});

describe('the schemas of the registry', () => {
  it('are built on first read, once, for every tool (a cold start builds only those its requests touch)', async () => {
    // Prepare: fresh connector modules, none of whose tool schemas has been read.
    vi.resetModules();
    const { connectors } = await import('../../lambdas/tools/registry');
    for (const connector of connectors) {
      for (const tool of connector.tools) {
        // Act
        const accessors = (['input', 'output'] as const).map((key) => typeof Object.getOwnPropertyDescriptor(tool, key)?.get);
        const first = tool.input;
        // Assess: accessors, not schemas built at import; the same schema on every read.
        expect(accessors, `${connector.name}.${tool.name}`).toEqual(['function', 'function']);
        expect(tool.input).toBe(first);
        expect(tool.output).toBe(tool.output);
        expect(typeof first.safeParse).toBe('function');
      }
    }
  });
});
