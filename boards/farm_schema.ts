/**
 * Schema of a farm file (`rkhil run --farm lab.yaml`): the targets one runner schedules.
 *
 * ```yaml
 * name: rock-lab                 # the farm's name (leases and run directories carry it)
 * database: postgres://rkhil@db.lab/rkhil  # several lab hosts: leases, job queue and history
 *                                # in PostgreSQL (default: lease files, history.sqlite)
 * leases:
 *   dir: /var/lib/rkhil/leases   # lease files, one per target (default ~/.cache/rkhil/leases)
 *   ttl_s: 120                   # a lease not renewed for this long is taken back
 * boards_dirs: [boards]          # where board ids are looked up (relative to this file)
 * qemu:                          # embedded targets: QEMU guests this host starts
 *   - id: qemu-1
 *     memory: 8G
 *     cpus: 2
 *     limits: { host_cpus: 1, host_memory: 1G }
 * groups:                        # boards behind one lab host (an SSH jump host), or none
 *   - name: lab-a
 *     jump: { host: lab-a.example.org, user: rkhil, host_key_fingerprint: "SHA256:..." }
 *     boards:
 *       - id: rock-3b-1          # a board id from boards_dirs
 *       - file: boards/rock-3b-2.yaml
 * ```
 *
 * Target ids are unique across the farm; per-target `limits` say what one job of the target
 * takes from this host (`host_cpus`, `host_memory`) so the scheduler never starts more QEMU
 * guests than the host can carry. A board costs the host nothing by default (it runs on its own
 * hardware); an embedded QEMU target one core and 1 GiB (a TCG guest of rkhil's initramfs
 * touches far less than its nominal memory).
 *
 * @module
 */
import { z } from "zod";
import { checkPostgresUrl, isPostgresUrl } from "../runner/history/postgres.ts";
import { BOARD_ID_PATTERN, parseSize, SshJumpSchema } from "./schema.ts";

/** Default lease time-to-live in seconds. */
export const DEFAULT_LEASE_TTL_S = 120;

const Id = z.string().regex(BOARD_ID_PATTERN, {
  error: "expected lower-case letters and digits separated by single dashes (rock-3b-1)",
});

/** A size such as `8G` or `512M` (or 0), output in bytes. */
const Size = z.union([z.string(), z.number()]).transform((value, ctx): number => {
  const n = value === 0 || value === "0" ? 0 : parseSize(value);
  if (n === undefined) {
    ctx.addIssue({ code: "custom", message: `expected a size such as 8G or 512M (got ${value})` });
    return z.NEVER;
  }
  return n;
});

/** What one job of a target takes from the rkhil host. */
export const LimitsSchema = z.strictObject({
  /** Host cores one job of this target occupies (0 to 64). */
  host_cpus: z.number().min(0).max(64).optional(),
  /** Host memory one job of this target occupies (`1G`). */
  host_memory: Size.optional(),
});

/** An embedded QEMU target. */
export const FarmQemuSchema = z.strictObject({
  id: Id,
  /** Guest memory, QEMU syntax (`8G`, 256M to 255G). */
  memory: z.string().regex(/^[1-9][0-9]*[MG]$/, {
    error: "expected a guest memory such as 8G or 512M",
  }).default("8G"),
  /** Guest CPUs. */
  cpus: z.number().int().min(1).max(8).default(2),
  limits: LimitsSchema.optional(),
});

/** A board of a group: by id (looked up in `boards_dirs`) or by the path of its board file. */
export const FarmBoardSchema = z.strictObject({
  id: Id.optional(),
  file: z.string().min(1).optional(),
  limits: LimitsSchema.optional(),
}).refine((b) => (b.id === undefined) !== (b.file === undefined), {
  message: "name the board by id or by file, exactly one of them",
});

/** Boards behind one lab host. */
export const FarmGroupSchema = z.strictObject({
  /** The group's name (the lab host's, usually). */
  name: Id,
  /** The lab host every board of the group is reached through (SSH jump host). */
  jump: SshJumpSchema.optional(),
  boards: z.array(FarmBoardSchema).min(1),
});

/** `database:` a PostgreSQL URL (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`). */
const DatabaseUrl = z.string().superRefine((url, ctx) => {
  if (!isPostgresUrl(url)) {
    ctx.addIssue({
      code: "custom",
      message: "expected a PostgreSQL URL: postgres://USER@HOST[:PORT]/DATABASE",
    });
    return;
  }
  try {
    checkPostgresUrl(url, "database");
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message.replace(/^database: /, "") });
  }
});

/** The farm file. */
export const FarmSchema: z.ZodType<FarmSpec, unknown> = z.strictObject({
  name: Id,
  /** Several lab hosts: leases, the job queue and the history in this PostgreSQL database. */
  database: DatabaseUrl.optional(),
  leases: z.strictObject({
    /** Directory of the lease files (relative to the farm file). */
    dir: z.string().min(1).optional(),
    /** Seconds a lease lives without renewal (10 to 86400). */
    ttl_s: z.number().int().min(10).max(86_400).default(DEFAULT_LEASE_TTL_S),
  }).default({ ttl_s: DEFAULT_LEASE_TTL_S }),
  boards_dirs: z.array(z.string().min(1)).default([]),
  qemu: z.array(FarmQemuSchema).default([]),
  groups: z.array(FarmGroupSchema).default([]),
}).superRefine((f, ctx) => {
  if (f.database !== undefined && f.leases.dir !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["leases", "dir"],
      message: "leases live in the farm's database when it has one; remove leases.dir or database",
    });
  }
});

/** Per-target limits as written (`host_memory` in bytes). */
export interface FarmLimits {
  /** Host cores one job of the target occupies. */
  host_cpus?: number;
  /** Host memory one job of the target occupies, in bytes. */
  host_memory?: number;
}

/** A validated farm file, before its boards are loaded. */
export interface FarmSpec {
  /** The farm's name. */
  name: string;
  /** PostgreSQL URL of the leases, the job queue and the history (several lab hosts). */
  database?: string;
  /** Lease directory (relative to the farm file) and time-to-live in seconds. */
  leases: { dir?: string; ttl_s: number };
  /** Directories of board files (relative to the farm file). */
  boards_dirs: string[];
  /** Embedded QEMU targets. */
  qemu: { id: string; memory: string; cpus: number; limits?: FarmLimits }[];
  /** Boards behind lab hosts. */
  groups: {
    name: string;
    jump?: { host: string; port: number; user: string; host_key_fingerprint?: string };
    boards: { id?: string; file?: string; limits?: FarmLimits }[];
  }[];
}
