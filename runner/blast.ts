/**
 * `rkhil blast-radius PATCH…` and `rkhil predict --patch NAME --all-boards`: read the patch files
 * (or take named patch sets), load the board files, and run the oracle's blast radius over
 * boards × releases. The reading is here; everything else is pure (oracle/blast.ts,
 * oracle/patch_model.ts, oracle/patch_text.ts).
 *
 * @module
 */
import { findBoard, listBoards } from "../boards/load.ts";
import { boardFacts } from "../boards/facts.ts";
import {
  type Applier,
  type BlastBoard,
  type BlastCell,
  blastRadius,
  patchSetApplier,
  seriesApplier,
} from "../oracle/blast.ts";
import { type NotModelled, type PatchEffect, patchEffect } from "../oracle/patch_model.ts";
import { MAX_PATCH_CHARS, parsePatchText, PatchTextError } from "../oracle/patch_text.ts";
import { getPatch, patchNames } from "../oracle/patches.ts";
import { RELEASES } from "../oracle/releases.ts";
import { resolveRelease } from "../oracle/scenario.ts";
import { UserInputError } from "./errors.ts";
import type { BlastReport } from "./report/blast_report.ts";

/** Options shared by both commands. */
export interface BlastOptions {
  /** Board ids to narrow to (default: every board file). */
  boards?: string[];
  /** Releases to narrow to (default: every release of the knowledge base). */
  kernels?: string[];
  /** Extra directories searched for the board files named in `boards`. */
  boardsDirs?: string[];
  /** Kernel command line assumed for every prediction (default: empty). */
  bootargs?: string;
}

/** The JSON shape of `blast-radius --json` (and `predict --all-boards --json`). */
export interface BlastJson extends BlastReport {
  /** Version of this JSON shape. */
  schema: 1;
}

/** Read and interpret patch files, in the order given (a series). */
export async function readPatchSeries(paths: string[]): Promise<PatchEffect[]> {
  if (paths.length === 0) {
    throw new UserInputError(
      "no patch given",
      "pass one or more patch files (git format-patch output, a mailbox, or a mail quoting one)",
    );
  }
  const texts: { path: string; text: string }[] = [];
  for (const path of paths) {
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) throw new Error("not a regular file");
      if (info.size > MAX_PATCH_CHARS) throw new Error(`${info.size} bytes is too large`);
      texts.push({ path, text: await Deno.readTextFile(path) });
    } catch (err) {
      throw new UserInputError(
        `cannot read patch ${path}: ${(err as Error).message}`,
        "give the path of a patch file (git format-patch output or a saved mail)",
      );
    }
  }
  const out: PatchEffect[] = [];
  for (const { path, text } of texts) {
    try {
      out.push(...parsePatchText(text, path).map(patchEffect));
    } catch (err) {
      if (err instanceof PatchTextError) throw new UserInputError(err.message, err.hint);
      throw err;
    }
  }
  return out;
}

async function boardsFor(o: BlastOptions): Promise<BlastBoard[]> {
  const loaded = o.boards?.length
    ? await Promise.all(o.boards.map((id) => findBoard(id, o.boardsDirs ?? [])))
    : await listBoards();
  return loaded
    .filter((l) => l.board.soc !== "qemu-virt")
    .map((l) => ({ facts: boardFacts(l.board, l.path), dtb: l.board.devicetree.dtb }));
}

function releasesFor(o: BlastOptions): string[] {
  if (!o.kernels?.length) return [...RELEASES];
  return o.kernels.map((k) => {
    const r = resolveRelease(k);
    return `${r.major}.${r.minor}`;
  });
}

function run(o: BlastOptions, boards: BlastBoard[], apply: Applier): BlastCell[] {
  return blastRadius(boards, releasesFor(o), apply, o.bootargs ?? "");
}

/** Blast radius of patch files. */
export async function blastOfPatchFiles(paths: string[], o: BlastOptions): Promise<BlastJson> {
  releasesFor(o); // bad input is refused before any work
  const boards = await boardsFor(o);
  const series = await readPatchSeries(paths);
  const cells = run(o, boards, seriesApplier(series));
  const notModelled: NotModelled[] = series.flatMap((p) => p.notModelled);
  const notes = [...new Set(series.flatMap((p) => p.notes.map((n) => `${p.source}: ${n}`)))];
  for (const p of series) {
    if (p.changes.length === 0) {
      notes.push(`${p.source}: "${p.subject}" changes nothing the model represents`);
    }
  }
  return {
    schema: 1,
    title: `Blast radius of ${paths.map((p) => p.replace(/^.*\//, "")).join(", ")}`,
    patches: series.map((p) => p.subject),
    cells,
    notModelled,
    notes,
  };
}

/** Blast radius of named patch sets (`predict --patch NAME --all-boards`). */
export async function blastOfPatchSets(names: string[], o: BlastOptions): Promise<BlastJson> {
  if (names.length === 0) {
    throw new UserInputError(
      "--all-boards needs --patch NAME",
      `name the patch set whose effect to predict on every board: ${patchNames().join(", ")}`,
    );
  }
  for (const n of names) {
    if (!getPatch(n)) {
      throw new UserInputError(
        `unknown patch set "${n}"`,
        `use one of: ${patchNames().join(", ")}`,
      );
    }
  }
  releasesFor(o);
  const boards = await boardsFor(o);
  return {
    schema: 1,
    title: `Blast radius of patch set ${names.join(" + ")}`,
    patches: names.map((n) => `${n}: ${getPatch(n)!.title}`),
    cells: run(o, boards, patchSetApplier(names)),
    notModelled: [],
    namedSets: true,
    notes: names.map((n) => `${n}: ${getPatch(n)!.source}`),
  };
}
