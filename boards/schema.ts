/**
 * Schema of a board definition file (`boards/*.yaml`).
 *
 * A board file describes one kind of target: its SoC, its DRAM banks, the IOMMU nodes the
 * oracle assumes when the user gives no device tree, how to reach its console and shell, how to
 * power it, and which capabilities a suite may ask of it (DESIGN.md, boundary 4). Every fact that
 * comes from research carries a `source` and a `confidence`.
 *
 * The schema is strict: an unknown key is an error. Cross-field rules (banks sorted and disjoint,
 * banks adding up to the RAM size, per-type console and power fields) are part of the schema, so
 * a file that parses is a file the oracle and the runner can trust. `load.ts` turns the issues
 * into `BoardFileError`s with file, line, column and field.
 *
 * @module
 */

import { z } from "zod";
import { DeploySchema } from "./deploy_schema.ts";

/** SoCs a board file may name. `qemu-virt` is QEMU's `-M virt` machine. */
export const SOCS = ["rk3568", "rk3566", "rk3588", "qemu-virt"] as const;
/** A SoC a board file may name. */
export type Soc = typeof SOCS[number];

/**
 * How sure a board fact is; the first four follow research/rockchip-iommu.md:
 * `verified` [V], `reported` [R], `derived` [D], `unknown` [?]; `input` is a fact the user wrote
 * into their own board file. Every value is also a valid `Confidence` of `oracle/types.ts`.
 */
export const CONFIDENCES = ["verified", "reported", "derived", "unknown", "input"] as const;
/** How sure a board fact is. */
export type BoardConfidence = typeof CONFIDENCES[number];

/**
 * Capabilities a suite may ask for (DESIGN.md, boundary 4). `boot-config`: rkhil chooses the
 * kernel, command line and RAM of each boot; only QEMU targets have it (rkhil adds it to the
 * embedded target) until kernel deployment comes with the farm issue, so a board file must not
 * claim it.
 */
export const CAPABILITIES = [
  "rk-iommu",
  "npu",
  "rknn",
  "rocket",
  "kernel-introspection",
  "probe-module",
  "cpu-workload",
  "boot-config",
] as const;
/** A capability a suite may ask for. */
export type Capability = typeof CAPABILITIES[number];

/** Console transports. */
export const CONSOLE_TYPES = ["serial", "tcp", "qemu-pty"] as const;
/** Protocols of a TCP console (`console.protocol`), as ser2net 4 serves a port. */
export const TCP_CONSOLE_PROTOCOLS = ["raw", "telnet"] as const;
/** Power adapters. */
export const POWER_TYPES = ["command", "qmp", "manual", "none"] as const;
/** Shell prompt regex a serial login waits for when `console.login.prompt` is not given. */
export const DEFAULT_SHELL_PROMPT = "[#$] $";

/** Granule every RAM bank boundary must be aligned to (the arm64 4 KiB page). */
export const RAM_BANK_ALIGN = 0x1000;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
};

/**
 * Parse a RAM size such as `"8G"`, `"512M"` or `"4096K"` (binary units: G = GiB) into bytes.
 * A plain non-negative integer is taken as bytes. Returns `undefined` when `value` is not a size.
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const m = /^([0-9]{1,9})\s*([KMG])(?:i?B)?$/.exec(value.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]];
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parse a physical address: a non-negative safe integer, or a string of hex digits with a `0x`
 * prefix and optional `_` separators (`"0x1_0000_0000"`). Returns `undefined` otherwise.
 */
export function parseAddress(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const m = /^0[xX]([0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)$/.exec(value.trim());
  if (!m) return undefined;
  const digits = m[1].replaceAll("_", "");
  if (digits.length > 13) return undefined; // beyond 2^52: not a physical address here
  return Number.parseInt(digits, 16);
}

/** Format an address or size as `0x…` hex, for messages. */
export function hex(n: number): string {
  return "0x" + n.toString(16);
}

/** Format a byte count as the largest exact binary unit (`8G`, `258M`, `4K`, or bytes). */
export function formatSize(bytes: number): string {
  for (const unit of ["G", "M", "K"]) {
    const f = SIZE_UNITS[unit];
    if (bytes !== 0 && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return `${bytes} bytes`;
}

/** Describe a value the user wrote, for "(got …)" in messages. Short and safe to print. */
export function describeInput(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    const s = value.length > 40 ? value.slice(0, 40) + "…" : value;
    return JSON.stringify(s);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

type Ctx = z.RefinementCtx<unknown>;

/** Add a custom issue carrying a hint for the user. */
function fail(
  ctx: Ctx,
  input: unknown,
  message: string,
  hint: string,
  path?: (string | number)[],
): void {
  ctx.addIssue({ code: "custom", message, input, params: { hint }, ...(path ? { path } : {}) });
}

const NonEmpty = z.string().trim().min(1);

const Confidence = z.enum(CONFIDENCES);

/** A physical address (hex string or integer), output as a number. */
const Address = z.unknown().transform((value, ctx): number => {
  if (value === undefined) {
    fail(ctx, value, "missing required field", "add an address such as 0x100000000");
    return z.NEVER;
  }
  const n = parseAddress(value);
  if (n === undefined) {
    fail(
      ctx,
      value,
      `expected a hex address like 0x100000000 (got ${describeInput(value)})`,
      "write the address as 0x followed by hex digits (underscores allowed: 0x1_0000_0000)",
    );
    return z.NEVER;
  }
  return n;
});

/** A size such as "8G", output as bytes. */
const Size = z.unknown().transform((value, ctx): number => {
  if (value === undefined) {
    fail(ctx, value, "missing required field", 'add a size such as "8G"');
    return z.NEVER;
  }
  const n = parseSize(value);
  if (n === undefined) {
    fail(
      ctx,
      value,
      `expected a size like "8G", "512M" or "4096K" (got ${describeInput(value)})`,
      "write a whole number followed by K, M or G (binary units: 1G = 1024M)",
    );
    return z.NEVER;
  }
  return n;
});

/** Device-tree unit address: exactly 8 lower-case hex digits, as in `iommu@fde4b000`. */
const UnitAddress = z.unknown().transform((value, ctx): string => {
  if (typeof value === "string" && /^[0-9a-f]{8}$/.test(value)) return value;
  if (value === undefined) {
    fail(ctx, value, "missing required field", "add the unit address, e.g. fde4b000");
  } else if (typeof value === "number") {
    // YAML reads 0xfdee0800 and all-digit units like 12345678 as numbers.
    fail(
      ctx,
      value,
      `expected a unit address of 8 lower-case hex digits like fde4b000 (got the number ${value}` +
        ` = ${hex(value)}: YAML read it as a number)`,
      'write the unit address as text without 0x, quoted if it is all digits: "12345678"',
    );
  } else {
    fail(
      ctx,
      value,
      `expected a unit address of 8 lower-case hex digits like fde4b000 (got ${
        describeInput(value)
      })`,
      "copy the unit address from the node name (iommu@fde4b000 -> fde4b000), without 0x",
    );
  }
  return z.NEVER;
});

const Port = z.number().int().min(1).max(65535);

/** One DRAM bank, half-open `[start, end)`. */
export const RamBankSchema = z.strictObject({
  start: Address,
  end: Address,
}).superRefine((bank, ctx) => {
  for (const key of ["start", "end"] as const) {
    if (bank[key] % RAM_BANK_ALIGN !== 0) {
      fail(
        ctx,
        bank[key],
        `${hex(bank[key])} is not 4 KiB aligned`,
        "bank boundaries are page aligned: round to a multiple of 0x1000",
        [key],
      );
    }
  }
  if (bank.end <= bank.start) {
    fail(
      ctx,
      bank.end,
      `end ${hex(bank.end)} is not above start ${hex(bank.start)}`,
      "banks are half-open [start, end): end is the first address after the bank",
      ["end"],
    );
  }
});

/** DRAM as the kernel sees it. */
export const RamSchema = z.strictObject({
  /** Installed RAM, e.g. "8G"; output in bytes. */
  size: Size,
  /** DRAM banks, sorted and disjoint. */
  banks: z.array(RamBankSchema).min(1),
  /** Why the banks do not add up to `size` (firmware carve-outs, unknown remaps). */
  size_note: NonEmpty.optional(),
  source: NonEmpty,
  confidence: Confidence,
}).superRefine((ram, ctx) => {
  let total = 0;
  ram.banks.forEach((bank, i) => {
    total += bank.end - bank.start;
    if (i === 0) return;
    const prev = ram.banks[i - 1];
    if (bank.start < prev.start) {
      fail(
        ctx,
        bank.start,
        `bank starts at ${hex(bank.start)}, below bank ${i - 1} at ${hex(prev.start)}`,
        "list the banks in ascending address order",
        ["banks", i, "start"],
      );
    } else if (bank.start < prev.end) {
      fail(
        ctx,
        bank.start,
        `bank [${hex(bank.start)}, ${hex(bank.end)}) overlaps bank ${i - 1} [${hex(prev.start)}, ${
          hex(prev.end)
        })`,
        "banks are half-open and must not overlap: start this bank at or after the previous end",
        ["banks", i, "start"],
      );
    }
  });
  if (total !== ram.size && ram.size_note === undefined) {
    fail(
      ctx,
      ram.size,
      `the banks add up to ${formatSize(total)} (${hex(total)}) but size is ${
        formatSize(ram.size)
      } (${hex(ram.size)})`,
      "fix the banks, or explain the difference in ram.size_note",
      ["size"],
    );
  }
});

/** One IOMMU node of the default device tree. */
export const IommuNodeSchema = z.strictObject({
  /** Unit address of the first `reg` bank, 8 hex digits (`fde4b000`). */
  unit: UnitAddress,
  /** Device-tree label (`rknpu_mmu`). */
  label: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: "expected a device-tree label such as rknpu_mmu (letters, digits, _)",
  }),
  /** `compatible` strings, most specific first. */
  compatible: z.array(NonEmpty).min(1),
  status: z.enum(["okay", "disabled"]),
  /** Unit addresses of further `reg` banks (the VOP MMU has two). */
  banks: z.array(UnitAddress).optional(),
  /** The device that uses this IOMMU (`npu@fde40000`). */
  master: NonEmpty.optional(),
  /** Boolean properties set on the node (`rockchip,disable-mmu-reset`). */
  properties: z.array(NonEmpty).optional(),
  /** Confidence of this node when it differs from the device tree's. */
  confidence: Confidence.optional(),
  note: NonEmpty.optional(),
});

/** The default IOMMU nodes, used when the user gives no DTB. */
export const DeviceTreeSchema = z.strictObject({
  source: NonEmpty,
  confidence: Confidence,
  /**
   * This board's DTB inside a kernel package's DTB directory (`rockchip/rk3568-rock-3b.dtb`),
   * read by `rkhil predict --kernel debian:<suite>`.
   */
  dtb: z.string().regex(/^[a-z0-9_-]+\/[a-z0-9_.+-]+\.dtb$/, {
    error: "expected a path like rockchip/rk3568-rock-3b.dtb",
  }).optional(),
  iommus: z.array(IommuNodeSchema),
}).superRefine((dt, ctx) => {
  const units = new Map<string, number>();
  const labels = new Map<string, number>();
  dt.iommus.forEach((node, i) => {
    for (const [j, unit] of [node.unit, ...(node.banks ?? [])].entries()) {
      const seen = units.get(unit);
      if (seen !== undefined) {
        fail(
          ctx,
          unit,
          `unit address ${unit} is already used by iommus[${seen}]`,
          "each reg bank belongs to one IOMMU node",
          j === 0 ? ["iommus", i, "unit"] : ["iommus", i, "banks", j - 1],
        );
      } else units.set(unit, i);
    }
    const seenLabel = labels.get(node.label);
    if (seenLabel !== undefined) {
      fail(
        ctx,
        node.label,
        `label ${node.label} is already used by iommus[${seenLabel}]`,
        "device-tree labels are unique",
        ["iommus", i, "label"],
      );
    } else labels.set(node.label, i);
  });
});

/** A name of an environment variable (`RKHIL_ROCK3B_PASSWORD`). */
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  error: "expected the NAME of an environment variable (letters, digits, _), never a password",
});

/** A regular expression written as text, checked to compile. */
const RegexText = z.string().min(1).superRefine((text, ctx) => {
  try {
    new RegExp(text);
  } catch (err) {
    fail(
      ctx,
      text,
      `not a valid regular expression: ${(err as Error).message.split("\n")[0]}`,
      "write a JavaScript regular expression, e.g. '[#$] $'",
    );
  }
});

/**
 * Login on the serial console when it asks (`login:` then `Password:`). Secrets never go into
 * a board file: `password_env` names an environment variable that holds the password.
 */
export const ConsoleLoginSchema = z.strictObject({
  /** User typed at `login:`. */
  user: NonEmpty,
  /** Name of the environment variable holding the password (typed at `Password:`). */
  password_env: EnvName.optional(),
  /** Regex of the shell prompt at the end of the console output (default `[#$] $`). */
  prompt: RegexText.default(DEFAULT_SHELL_PROMPT),
});

/** How to reach the console (from power-on, DESIGN.md boundary 5). */
export const ConsoleSchema = z.strictObject({
  /**
   * `serial` (a USB UART: `device` + `baud`), `tcp` (a console server such as ser2net:
   * `host` + `port` + `protocol`), or `qemu-pty` (the embedded QEMU target; rkhil opens the pty
   * of the QEMU it runs).
   */
  type: z.enum(CONSOLE_TYPES),
  /** Serial device (`/dev/ttyUSB0`, `/dev/serial/by-id/...`, or a QEMU pty's `/dev/pts/N`). */
  device: NonEmpty.optional(),
  /** Serial speed; the RK3568 debug UART runs at 1500000. */
  baud: z.number().int().positive().optional(),
  /** ser2net-style TCP console host. */
  host: NonEmpty.optional(),
  /** TCP console port. */
  port: Port.optional(),
  /** TCP console protocol: ser2net's `raw` accepter, or `telnet` (RFC 854 IAC handled). */
  protocol: z.enum(TCP_CONSOLE_PROTOCOLS).optional(),
  /** Login when the console asks for one (serial and tcp consoles). */
  login: ConsoleLoginSchema.optional(),
}).superRefine((c, ctx) => {
  const need = (key: "device" | "baud" | "host" | "port" | "protocol", hint: string) => {
    if (c[key] === undefined) {
      fail(ctx, undefined, `required when console.type is ${c.type}`, hint, [key]);
    }
  };
  const forbid = (key: "device" | "baud" | "host" | "port" | "protocol" | "login") => {
    if (c[key] !== undefined) {
      fail(
        ctx,
        c[key],
        `does not apply to console.type ${c.type}`,
        `remove ${key}, or change console.type`,
        [key],
      );
    }
  };
  if (c.type === "serial") {
    need("device", "add device: /dev/ttyUSB0 (the USB UART on the lab host)");
    need("baud", "add baud: 1500000 (Rockchip debug UART)");
    forbid("host");
    forbid("port");
    forbid("protocol");
  } else if (c.type === "tcp") {
    need("host", "add host: the ser2net host");
    need("port", "add port: the ser2net TCP port");
    need("protocol", "add protocol: raw or telnet (the ser2net accepter: tcp,PORT or telnet,PORT)");
    forbid("device");
  } else {
    forbid("device");
    forbid("host");
    forbid("port");
    forbid("protocol");
    forbid("login");
  }
});

/** OpenSSH SHA256 host key fingerprint, as printed by `ssh-keygen -lf`. */
const Fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, {
  error: "expected an OpenSSH fingerprint like SHA256:<43 base64 characters>",
});

/** A jump host for boards behind a lab host. */
export const SshJumpSchema = z.strictObject({
  host: NonEmpty,
  port: Port.default(22),
  user: NonEmpty,
  host_key_fingerprint: Fingerprint.optional(),
});

/**
 * How to reach a shell over SSH. Secrets never go into a board file: `key_file` names the
 * private key's file, whose text never reaches a log or an error.
 */
export const SshSchema = z.strictObject({
  host: NonEmpty,
  port: Port.default(22),
  user: NonEmpty,
  /**
   * Path of the OpenSSH private key to log in with; a relative path resolves against the
   * board file's directory.
   */
  key_file: NonEmpty.optional(),
  /**
   * Pinned host key (`SHA256:...`). Required for a board target to run (no trust on first
   * use in a lab): `ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -` prints it.
   */
  host_key_fingerprint: Fingerprint.optional(),
  jump: SshJumpSchema.optional(),
});

/**
 * How to switch the board on and off: `command` (shell command lines run with `sh -c` on the
 * rkhil host, as labs drive PDUs, relays and USB hubs; a non-zero status is a MISS with the
 * command's first stderr line), `qmp` (a QEMU guest's QMP socket: on = `cont`, off = `stop` +
 * `system_reset`), `manual` (rkhil asks on the terminal and waits for Enter; refused when not
 * interactive) or `none` (always on; reboots only from its own shell).
 */
export const PowerSchema = z.strictObject({
  type: z.enum(POWER_TYPES),
  /** Shell command that switches power on (type command). */
  on: NonEmpty.optional(),
  /** Shell command that switches power off (type command). */
  off: NonEmpty.optional(),
  /** Shell command that power-cycles in one go (type command; default: off, wait, on). */
  cycle: NonEmpty.optional(),
  /**
   * QMP socket path (type qmp) of a QEMU guest a lab runs; the embedded QEMU target (console
   * qemu-pty) has its own and names none.
   */
  socket: NonEmpty.optional(),
  /** Minimum time in milliseconds the board stays off before it is switched on again. */
  min_off_ms: z.number().int().min(0).max(3_600_000).optional(),
}).superRefine((p, ctx) => {
  if (p.type !== "command" && p.cycle !== undefined) {
    fail(
      ctx,
      p.cycle,
      `does not apply to power.type ${p.type}`,
      "remove cycle, or set power.type to command",
      ["cycle"],
    );
  }
  if (p.type !== "qmp" && p.socket !== undefined) {
    fail(
      ctx,
      p.socket,
      `does not apply to power.type ${p.type}`,
      "remove socket, or set power.type to qmp",
      ["socket"],
    );
  }
  for (const key of ["on", "off"] as const) {
    if (p.type === "command" && p[key] === undefined) {
      fail(
        ctx,
        undefined,
        "required when power.type is command",
        `add ${key}: the command that switches power ${key}`,
        [key],
      );
    }
    if (p.type !== "command" && p[key] !== undefined) {
      fail(
        ctx,
        p[key],
        `does not apply to power.type ${p.type}`,
        `remove ${key}, or set power.type to command`,
        [key],
      );
    }
  }
});

/** QEMU machine parameters (soc qemu-virt only). */
export const QemuSchema = z.strictObject({
  /** Guest RAM, e.g. "8G"; output in bytes; equals ram.size. */
  mem: Size,
  /** `-cpu` model (QEMU 7.2 has no Cortex-A55: cortex-a53). */
  cpu: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, {
    error: "expected a QEMU CPU model such as cortex-a53",
  }),
  /** `-smp` CPU count. */
  smp: z.number().int().min(1).max(64),
});

const Capabilities = z.array(z.enum(CAPABILITIES)).superRefine((caps, ctx) => {
  caps.forEach((cap, i) => {
    if (caps.indexOf(cap) !== i) {
      fail(ctx, cap, `capability ${cap} is listed twice`, "remove the duplicate", [i]);
    }
  });
});

/** Board ids are kebab-case and equal the file name without `.yaml`. */
export const BOARD_ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** A whole board file. */
export const BoardSchema = z.strictObject({
  id: z.string().regex(BOARD_ID_PATTERN, {
    error: "expected a kebab-case id such as rock-3b-8g",
  }),
  name: NonEmpty,
  soc: z.enum(SOCS),
  description: NonEmpty,
  ram: RamSchema,
  devicetree: DeviceTreeSchema,
  console: ConsoleSchema,
  ssh: SshSchema.optional(),
  power: PowerSchema.optional(),
  /**
   * Where the board keeps its firmware and SDK files (e.g. the RKNN runtime), a directory on
   * the board (absolute path).
   */
  firmware_dir: z.string().regex(/^\/[^\0]*$/, {
    error: "expected an absolute path on the board, e.g. /opt/rknn",
  }).optional(),
  capabilities: Capabilities,
  qemu: QemuSchema.optional(),
  /** Kernel deployment through U-Boot with a known-good fallback (`deploy_schema.ts`). */
  deploy: DeploySchema.optional(),
}).superRefine((b, ctx) => {
  if (b.deploy && b.power?.type !== "command" && b.power?.type !== "qmp") {
    fail(
      ctx,
      b.power?.type ?? "(no power)",
      "kernel deployment needs a power adapter rkhil can cycle",
      "give the board power.type command (relay, PDU) or qmp: a kernel that does not come " +
        "up is followed by the known-good one only after a power cycle",
      ["deploy", "method"],
    );
  }
  const bootConfig = b.capabilities.indexOf("boot-config");
  if (bootConfig >= 0) {
    fail(
      ctx,
      "boot-config",
      "a board file cannot claim boot-config",
      "remove boot-config: rkhil gives it to the QEMU targets it boots itself (it chooses " +
        "their kernel, command line and RAM); boards get it with kernel deployment",
      ["capabilities", bootConfig],
    );
  }
  if (b.power?.type === "qmp" && b.power.socket === undefined && b.console.type !== "qemu-pty") {
    fail(
      ctx,
      undefined,
      "required when power.type is qmp on a board reached through its board file",
      "add socket: the QMP socket path of the QEMU guest (only the embedded QEMU target, " +
        "console.type qemu-pty, has its own)",
      ["power", "socket"],
    );
  }
  if (b.soc === "qemu-virt") {
    if (b.qemu === undefined) {
      fail(
        ctx,
        undefined,
        "required when soc is qemu-virt",
        "add qemu: { mem: 8G, cpu: cortex-a53, smp: 2 }",
        ["qemu"],
      );
    } else if (b.qemu.mem !== b.ram.size) {
      fail(
        ctx,
        b.qemu.mem,
        `${formatSize(b.qemu.mem)} differs from ram.size ${formatSize(b.ram.size)}`,
        "make qemu.mem and ram.size equal",
        ["qemu", "mem"],
      );
    }
    if (b.devicetree.iommus.length > 0) {
      fail(
        ctx,
        b.devicetree.iommus.length,
        "QEMU -M virt has no Rockchip IOMMU",
        "leave devicetree.iommus empty for soc qemu-virt",
        ["devicetree", "iommus"],
      );
    }
    for (const cap of ["rk-iommu", "npu", "rknn", "rocket"] as const) {
      const i = b.capabilities.indexOf(cap);
      if (i >= 0) {
        fail(
          ctx,
          cap,
          `a qemu-virt guest has no ${cap}`,
          `remove ${cap} from capabilities`,
          ["capabilities", i],
        );
      }
    }
  } else {
    if (b.qemu !== undefined) {
      fail(
        ctx,
        "qemu",
        `only applies to soc qemu-virt (this board is ${b.soc})`,
        "remove the qemu block",
        ["qemu"],
      );
    }
    if (b.console.type === "qemu-pty") {
      fail(
        ctx,
        b.console.type,
        "qemu-pty only applies to soc qemu-virt",
        "use console.type serial or tcp",
        ["console", "type"],
      );
    }
  }
});

/** A validated board definition, as `load.ts` returns it. Addresses and sizes are bytes. */
export type BoardSpec = z.output<typeof BoardSchema>;
/** DRAM description with sizes in bytes and banks as numbers. */
export type RamSpec = z.output<typeof RamSchema>;
/** One DRAM bank, half-open `[start, end)` (compatible with `PhysRange` of the oracle). */
export type RamBank = z.output<typeof RamBankSchema>;
/** Default device-tree IOMMU nodes. */
export type DeviceTreeSpec = z.output<typeof DeviceTreeSchema>;
/** One IOMMU node. */
export type IommuNodeSpec = z.output<typeof IommuNodeSchema>;
/** Console access. */
export type ConsoleSpec = z.output<typeof ConsoleSchema>;
/** SSH access. */
export type SshSpec = z.output<typeof SshSchema>;
/** Power adapter. */
export type PowerSpec = z.output<typeof PowerSchema>;
/** QEMU parameters. */
export type QemuSpec = z.output<typeof QemuSchema>;
/** Serial login on the console. */
export type ConsoleLoginSpec = z.output<typeof ConsoleLoginSchema>;

/**
 * The keys each mapping of a board file may hold, by path pattern (`""` is the top level,
 * list items are written `[]`): used for "did you mean" hints on unknown keys.
 */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  "": Object.keys(BoardSchema.shape),
  "ram": Object.keys(RamSchema.shape),
  "ram.banks[]": Object.keys(RamBankSchema.shape),
  "devicetree": Object.keys(DeviceTreeSchema.shape),
  "devicetree.iommus[]": Object.keys(IommuNodeSchema.shape),
  "console": Object.keys(ConsoleSchema.shape),
  "console.login": Object.keys(ConsoleLoginSchema.shape),
  "ssh": Object.keys(SshSchema.shape),
  "ssh.jump": Object.keys(SshJumpSchema.shape),
  "power": Object.keys(PowerSchema.shape),
  "qemu": Object.keys(QemuSchema.shape),
  "deploy": Object.keys(DeploySchema.shape),
};
