/**
 * The board file of a lab guest: the board facts of `boards/qemu-virt-8g.yaml` (copied, so the
 * oracle predicts the same for a lab guest as for the embedded target), reached as a lab
 * reaches a board: SSH to 127.0.0.1:PORT with a key file and the pinned host key, the console
 * on the guest's pty (type serial) or through ser2net (type tcp, raw or telnet), power by
 * `command` lines (or a QMP socket).
 *
 * @module
 */

/** How a lab guest's console is reached. */
export type LabConsole =
  & (
    | { type: "serial"; device: string }
    | { type: "tcp"; port: number; protocol: "raw" | "telnet" }
  )
  & {
    /** The console asks for a login: user root, password in the variable `passwordEnv`. */
    login?: { passwordEnv: string };
  };

/** How a lab guest's power is switched. */
export type LabPower =
  | { type: "command"; on: string; off: string; cycle?: string }
  | { type: "qmp"; socket: string };

/** What a lab board file says. */
export interface LabBoardFile {
  /** Board id (`lab-1`), also the file name. */
  id: string;
  /** Host port forwarded to the guest's SSH. */
  sshPort: number;
  /** The guest's host key fingerprint (`SHA256:...`), pinned. */
  fingerprint: string;
  /** Private key file (absolute, or relative to the board file's directory). */
  keyFile: string;
  /** Console. */
  console: LabConsole;
  /** Power. */
  power: LabPower;
  /** Minimum off time, ms. */
  minOffMs?: number;
}

/** A YAML double-quoted scalar. */
function q(s: string): string {
  return JSON.stringify(s);
}

/** The board file text (YAML) of a lab guest. */
export function labBoardYaml(b: LabBoardFile): string {
  const console = b.console.type === "serial"
    ? [
      "console:",
      "  # The guest's PL011 on the pty QEMU made: opened like a USB UART.",
      "  type: serial",
      `  device: ${q(b.console.device)}`,
      "  baud: 1500000",
    ]
    : [
      "console:",
      `  # The guest's pty served by ser2net (${b.console.protocol}).`,
      "  type: tcp",
      "  host: 127.0.0.1",
      `  port: ${b.console.port}`,
      `  protocol: ${b.console.protocol}`,
    ];
  const power = b.power.type === "command"
    ? [
      "power:",
      "  type: command",
      `  on: ${q(b.power.on)}`,
      `  off: ${q(b.power.off)}`,
      ...(b.power.cycle ? [`  cycle: ${q(b.power.cycle)}`] : []),
    ]
    : ["power:", "  type: qmp", `  socket: ${q(b.power.socket)}`];
  if (b.minOffMs !== undefined) power.push(`  min_off_ms: ${b.minOffMs}`);
  if (b.console.login) {
    console.push(`  login: { user: root, password_env: ${b.console.login.passwordEnv} }`);
  }
  return [
    `# A lab guest written by rkhil's lab (runner/lab): a QEMU -M virt guest reached only`,
    "# through this file, as a board on a lab's desk is. Board facts as boards/qemu-virt-8g.yaml.",
    `id: ${b.id}`,
    `name: Lab guest ${b.id} (QEMU virt, Cortex-A53, 8 GiB)`,
    "soc: qemu-virt",
    "description: >-",
    "  A qemu-system-aarch64 -M virt guest with 8 GiB run by rkhil's lab and reached like a",
    "  board: SSH with a pinned host key, a serial or ser2net console, power by command lines.",
    "ram:",
    "  size: 8G",
    "  banks:",
    "    - { start: 0x4000_0000, end: 0x2_4000_0000 }",
    "  source: qemu hw/arm/virt.c base_memmap[VIRT_MEM] = { GiB, ... } (RAM base 0x40000000)",
    "  confidence: verified",
    "devicetree:",
    "  source: qemu hw/arm/virt.c (generated device tree, no Rockchip IOMMU)",
    "  confidence: verified",
    "  iommus: []",
    ...console,
    "ssh:",
    "  host: 127.0.0.1",
    `  port: ${b.sshPort}`,
    "  user: root",
    `  key_file: ${q(b.keyFile)}`,
    `  host_key_fingerprint: ${b.fingerprint}`,
    ...power,
    "capabilities:",
    "  - kernel-introspection",
    "  - probe-module",
    "  - cpu-workload",
    "qemu:",
    "  mem: 8G",
    "  cpu: cortex-a53",
    "  smp: 2",
    "",
  ].join("\n");
}
