/**
 * Kernel facts from a live target: parsers (pure) and the collector.
 *
 * @module
 */
export * from "./parsers.ts";
export * from "./collect.ts";
