/**
 * A serialport binding for Deno on Linux: serialport's `BindingInterface` implemented on
 * file descriptors and termios driven through Deno FFI on the C library, so that pseudo
 * terminals (QEMU consoles) and real UARTs (USB adapters, on-board UARTs) go through one
 * code path.
 *
 * Why not `@serialport/bindings-cpp`: under Deno its native addon opens a device, but every
 * read and write then fails with EBADF (measured).
 *
 * Why not `Deno.open`: measured with strace on Deno 2.9, `Deno.open(path, {read, write})`
 * opens a terminal with `O_RDWR|O_CLOEXEC` only. Without `O_NOCTTY`, a process that is a
 * session leader without a controlling terminal (any systemd service, a `setsid` daemon)
 * acquires the UART as its controlling terminal and is sent SIGHUP when the line hangs up
 * (USB adapter unplugged). `FsFile.read()` runs a blocking `read(2)` on a duplicated
 * descriptor in a worker thread; `close()` rejects the promise but the duplicate stays open
 * and the thread stays blocked until the next byte arrives, which it then swallows: the
 * device is not released and a byte is lost. Deno offers no way to wrap a raw descriptor in
 * an `FsFile` (re-opening `/proc/self/fd/N` makes a new open file description, and for
 * `/dev/ptmx` a new pseudo terminal). So this binding does its own I/O on a descriptor
 * opened with `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`: `read(2)`/`write(2)` are called
 * synchronously and never block; waiting is a `poll(2)` on the descriptor plus an `eventfd`
 * run on Deno's blocking thread pool (a `nonblocking` FFI symbol), and `close()` wakes the
 * poll through the eventfd before the descriptor is closed. A pending read then rejects
 * with `canceled: true`, as the binding interface asks.
 *
 * Semantics, as serialport expects them:
 * - `read()` resolves with at least one byte. A hang-up (a pseudo terminal whose other end
 *   closed: EIO or end of file; a USB adapter unplugged: EIO/ENXIO/ENODEV) rejects with an
 *   error whose `disconnect` is true; `SerialPortStream` turns it into a `close` event with
 *   a `DisconnectedError`, not a crash.
 * - `write()` resolves once every byte was handed to the kernel; partial writes and EAGAIN
 *   (full output buffer) are handled by waiting for POLLOUT.
 * - Baud rates: the Linux `Bnnnn` codes from 50 to 4 000 000 are set with
 *   `cfsetispeed`/`cfsetospeed`; any other rate is set with `TCSETS2` and `BOTHER`.
 *   1 500 000 (Rockchip debug UARTs) is a standard code.
 * - `set()`/`get()` use `TIOCMGET`/`TIOCMSET`; on devices without modem lines (pseudo
 *   terminals) `set()` only applies `brk` and `get()` reports every line as false.
 * - `lock` (default true) takes an advisory `flock(LOCK_EX|LOCK_NB)`, as bindings-cpp does.
 * - Bytes that arrived before `open()` configured raw mode were already processed by the
 *   line discipline's previous settings (a fresh pty in cooked mode turns CR into LF and
 *   echoes them back). They are kept, not flushed; call `flush()` to drop them.
 *
 * Platform: Linux with the generic ioctl and open-flag numbering (x86_64, aarch64, arm,
 * riscv64) and glibc or musl with `openpty` in libc (glibc 2.34 or later). Permissions:
 * `--allow-ffi` (and `--allow-read` for `list()`).
 *
 * ```ts
 * import { SerialPortStream } from "@serialport/stream";
 * import { DenoSerialBinding } from "./deno_binding.ts";
 * const port = new SerialPortStream({ binding: DenoSerialBinding, path: "/dev/ttyUSB0",
 *   baudRate: 1_500_000 });
 * port.on("data", (b: Uint8Array) => console.log(b.length));
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from "@serialport/bindings-interface";

// ---------------------------------------------------------------------------------------------
// libc through FFI
// ---------------------------------------------------------------------------------------------

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  cfsetispeed: { parameters: ["buffer", "u32"], result: "i32" },
  cfsetospeed: { parameters: ["buffer", "u32"], result: "i32" },
  cfgetispeed: { parameters: ["buffer"], result: "u32" },
  cfgetospeed: { parameters: ["buffer"], result: "u32" },
  tcflush: { parameters: ["i32", "i32"], result: "i32" },
  tcdrain: { parameters: ["i32"], result: "i32", nonblocking: true },
  openpty: { parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"], result: "i32" },
  ttyname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
let libcCache: Libc | undefined;

/** The C library's symbols, loaded on first use (so importing this module needs no FFI). */
function libc(): Libc {
  if (!libcCache) {
    if (Deno.build.os !== "linux") {
      throw new Error(`deno_binding: only Linux is supported, not ${Deno.build.os}`);
    }
    libcCache = Deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  }
  return libcCache;
}

/** errno of the last failed libc call made on this thread (FFI sync calls run on it). */
function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** Linux errno numbers used here (generic numbering). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOTSUP: 95,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Errno).map(([k, v]) => [v, k]),
);

/** Error raised by this binding. Mirrors Node's system errors and serialport's flags. */
export class SerialBindingError extends Error {
  /** `true` when a pending operation ended because the port was closed by us. */
  canceled?: boolean;
  /** `true` when the device went away (hang-up, unplugged, other end of a pty closed). */
  disconnect?: boolean;
  /** Symbolic errno (`EIO`, `EACCES`, ...) when a system call failed. */
  code?: string;
  /** Numeric errno when a system call failed. */
  errno?: number;

  constructor(
    message: string,
    opts: { canceled?: boolean; disconnect?: boolean; errno?: number } = {},
  ) {
    super(message);
    this.name = "SerialBindingError";
    if (opts.canceled) this.canceled = true;
    if (opts.disconnect) this.disconnect = true;
    if (opts.errno !== undefined) {
      this.errno = opts.errno;
      this.code = ERRNO_NAMES[opts.errno] ?? `E${opts.errno}`;
    }
  }
}

function strerror(e: number): string {
  const p = libc().strerror(e);
  return p === null ? `errno ${e}` : new Deno.UnsafePointerView(p).getCString();
}

function sysError(what: string, e: number, disconnect = false): SerialBindingError {
  return new SerialBindingError(`${what}: ${strerror(e)}`, { errno: e, disconnect });
}

function canceled(what: string): SerialBindingError {
  return new SerialBindingError(`${what}: port is closed`, { canceled: true });
}

const cstr = (s: string): Uint8Array => new TextEncoder().encode(s + "\0");

// Open flags, poll bits, ioctl numbers (generic Linux numbering).
const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const LOCK_EX = 2;
const LOCK_NB = 4;
const TCSANOW = 0;
const TCIOFLUSH = 2;
const TIOCMGET = 0x5415;
const TIOCMSET = 0x5418;
const TIOCSBRK = 0x5427;
const TIOCCBRK = 0x5428;
const TCGETS2 = 0x802c542a;
const TCSETS2 = 0x402c542b;
const TIOCM_DTR = 0x002;
const TIOCM_RTS = 0x004;
const TIOCM_CTS = 0x020;
const TIOCM_CAR = 0x040;
const TIOCM_DSR = 0x100;

/** termios flag bits (Linux, generic). */
export const TermiosFlags = {
  // c_iflag
  IGNBRK: 0o1,
  BRKINT: 0o2,
  IGNPAR: 0o4,
  PARMRK: 0o10,
  INPCK: 0o20,
  ISTRIP: 0o40,
  INLCR: 0o100,
  IGNCR: 0o200,
  ICRNL: 0o400,
  IXON: 0o2000,
  IXANY: 0o4000,
  IXOFF: 0o10000,
  // c_oflag
  OPOST: 0o1,
  // c_cflag
  CBAUD: 0o10017,
  BOTHER: 0o10000,
  CSIZE: 0o60,
  CS5: 0o0,
  CS6: 0o20,
  CS7: 0o40,
  CS8: 0o60,
  CSTOPB: 0o100,
  CREAD: 0o200,
  PARENB: 0o400,
  PARODD: 0o1000,
  HUPCL: 0o2000,
  CLOCAL: 0o4000,
  CMSPAR: 0o10000000000,
  CRTSCTS: 0o20000000000,
  // c_lflag
  ISIG: 0o1,
  ICANON: 0o2,
  ECHO: 0o10,
  IEXTEN: 0o100000,
} as const;

/** Linux `Bnnnn` speed codes, numeric rate to code. */
export const BAUD_CODES: ReadonlyMap<number, number> = new Map([
  [0, 0o0],
  [50, 0o1],
  [75, 0o2],
  [110, 0o3],
  [134, 0o4],
  [150, 0o5],
  [200, 0o6],
  [300, 0o7],
  [600, 0o10],
  [1200, 0o11],
  [1800, 0o12],
  [2400, 0o13],
  [4800, 0o14],
  [9600, 0o15],
  [19200, 0o16],
  [38400, 0o17],
  [57600, 0o10001],
  [115200, 0o10002],
  [230400, 0o10003],
  [460800, 0o10004],
  [500000, 0o10005],
  [576000, 0o10006],
  [921600, 0o10007],
  [1000000, 0o10010],
  [1152000, 0o10011],
  [1500000, 0o10012],
  [2000000, 0o10013],
  [2500000, 0o10014],
  [3000000, 0o10015],
  [3500000, 0o10016],
  [4000000, 0o10017],
]);
const BAUD_RATES = new Map([...BAUD_CODES].map(([rate, code]) => [code, rate]));

// glibc `struct termios` (x86_64/aarch64): 4 flag words, c_line, c_cc[32], then speeds.
const TERMIOS_SIZE = 64; // 60 used; rounded up
const OFF_IFLAG = 0, OFF_OFLAG = 4, OFF_CFLAG = 8, OFF_LFLAG = 12, OFF_CC = 17;
const VTIME = 5, VMIN = 6;
// kernel `struct termios2`: 4 flag words, c_line, c_cc[19], c_ispeed, c_ospeed.
const TERMIOS2_SIZE = 44, OFF2_ISPEED = 36, OFF2_OSPEED = 40;
const IBSHIFT = 16;

/** A decoded snapshot of a terminal's settings, read with `tcgetattr` and `TCGETS2`. */
export interface TermiosInfo {
  /** `c_iflag` (input modes). */
  iflag: number;
  /** `c_oflag` (output modes). */
  oflag: number;
  /** `c_cflag` (control modes). */
  cflag: number;
  /** `c_lflag` (local modes). */
  lflag: number;
  /** `c_cc[VMIN]`. */
  vmin: number;
  /** `c_cc[VTIME]` (tenths of a second). */
  vtime: number;
  /** `cfgetispeed`/`cfgetospeed` translated from the `Bnnnn` code (undefined for BOTHER). */
  inputSpeed: number | undefined;
  /** Output rate from `cfgetospeed` (undefined for BOTHER). */
  outputSpeed: number | undefined;
  /** The numeric rates the kernel reports through `TCGETS2` (any rate, BOTHER included). */
  kernelInputSpeed: number;
  /** Output rate from `TCGETS2`. */
  kernelOutputSpeed: number;
}

// ---------------------------------------------------------------------------------------------
// TtyFd: one non-blocking descriptor with cancellable waits
// ---------------------------------------------------------------------------------------------

/** What `TtyFd.read` returns when the other side hung up. */
export const HANGUP = Symbol("hangup");

/**
 * A non-blocking terminal (or any pollable) file descriptor with cancellable async reads and
 * writes. This is the I/O core of {@link DenoSerialBinding}; it is exported for pseudo
 * terminal masters ({@link openPty}) and tests.
 */
export class TtyFd {
  #fd: number;
  #wake: number;
  #open = true;
  #waits = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;
  /**
   * Reads, writes and drains refused because the descriptor was closed (pending ones woken by
   * `close()` included). Each is rejected with `canceled: true`, as the binding interface
   * asks, which serialport treats as the end of the operation, not as an error; bytes still in
   * the kernel are never read after close.
   */
  droppedAfterClose = 0;

  private constructor(fd: number, wake: number, readonly path: string) {
    this.#fd = fd;
    this.#wake = wake;
  }

  /** Opens `path` with `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`. */
  static open(path: string): TtyFd {
    const fd = libc().open(cstr(path), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw sysError(`open ${path}`, errno());
    try {
      return TtyFd.adopt(fd, path);
    } catch (err) {
      libc().close(fd);
      throw err;
    }
  }

  /** Takes ownership of an already open descriptor and makes it non-blocking. */
  static adopt(fd: number, path: string): TtyFd {
    // O_NONBLOCK through ioctl(FIONBIO) keeps the FFI table free of variadic fcntl.
    const one = new Int32Array([1]);
    if (libc().ioctl(fd, 0x5421n, /* FIONBIO */ one) < 0) {
      throw sysError(`set O_NONBLOCK on ${path}`, errno());
    }
    const wake = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) throw sysError("eventfd", errno());
    return new TtyFd(fd, wake, path);
  }

  #refused(what: string): SerialBindingError {
    this.droppedAfterClose++;
    return canceled(what);
  }

  /** The raw descriptor (for ioctls of your own). Invalid after `close()`. */
  get fd(): number {
    return this.#fd;
  }

  /** `false` once `close()` was called. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Waits until the descriptor is ready for `events` (POLLIN/POLLOUT) or reports an error or
   * hang-up. Returns the `revents` bits, or `undefined` when the port was closed meanwhile.
   */
  async #wait(events: number): Promise<number | undefined> {
    if (!this.#open) return undefined;
    const pfd = new Uint8Array(16);
    const dv = new DataView(pfd.buffer);
    dv.setInt32(0, this.#fd, true);
    dv.setInt16(4, events, true);
    dv.setInt32(8, this.#wake, true);
    dv.setInt16(12, POLLIN, true);
    for (;;) {
      const p = libc().poll(pfd, 2n, -1);
      this.#waits.add(p);
      let rc: number;
      try {
        rc = await p;
      } finally {
        this.#waits.delete(p);
      }
      if (!this.#open || dv.getInt16(14, true) !== 0) return undefined;
      if (rc > 0) return dv.getInt16(6, true);
      // rc < 0 is EINTR on the worker thread (errno lives there); poll again.
    }
  }

  /**
   * Reads up to `length` bytes into `buffer` at `offset`, waiting until at least one byte is
   * available. Returns the count, or {@link HANGUP} when the other end hung up. Rejects with
   * `canceled: true` when the port is closed while waiting.
   */
  async read(buffer: Uint8Array, offset = 0, length = buffer.length - offset): Promise<
    number | typeof HANGUP
  > {
    if (length <= 0) throw new RangeError("read: length must be positive");
    if (offset + length > buffer.length) throw new RangeError("read: past the buffer's end");
    const view = buffer.subarray(offset, offset + length);
    for (;;) {
      if (!this.#open) throw this.#refused(`read ${this.path}`);
      const n = Number(libc().read(this.#fd, view, BigInt(length)));
      if (n > 0) return n;
      if (n === 0) return HANGUP; // a hung-up tty reads as end of file
      const e = errno();
      if (e === Errno.EAGAIN || e === Errno.EINTR) {
        const rev = await this.#wait(POLLIN);
        if (rev === undefined) throw this.#refused(`read ${this.path}`);
        if (rev & POLLNVAL) throw this.#refused(`read ${this.path}`);
        // POLLHUP/POLLERR: loop once more; read() then reports EIO or end of file.
        continue;
      }
      if (e === Errno.EIO || e === Errno.ENXIO || e === Errno.ENODEV) return HANGUP;
      throw sysError(`read ${this.path}`, e, e === Errno.EBADF);
    }
  }

  /**
   * Writes all of `data`, handling partial writes and a full output buffer. Resolves once
   * every byte was handed to the kernel. Rejects with `disconnect: true` on hang-up and with
   * `canceled: true` when the port is closed meanwhile.
   */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (!this.#open) throw this.#refused(`write ${this.path}`);
      const rest = data.subarray(off);
      const n = Number(libc().write(this.#fd, rest, BigInt(rest.length)));
      if (n > 0) {
        off += n;
        continue;
      }
      const e = n === 0 ? Errno.EAGAIN : errno();
      if (e === Errno.EAGAIN || e === Errno.EINTR) {
        const rev = await this.#wait(POLLOUT);
        if (rev === undefined || rev & POLLNVAL) throw this.#refused(`write ${this.path}`);
        if ((rev & (POLLHUP | POLLERR)) && !(rev & POLLOUT)) {
          throw new SerialBindingError(`write ${this.path}: hang-up`, {
            disconnect: true,
            errno: Errno.EIO,
          });
        }
        continue;
      }
      const gone = e === Errno.EIO || e === Errno.ENXIO || e === Errno.ENODEV ||
        e === Errno.EBADF;
      throw sysError(`write ${this.path}`, e, gone);
    }
  }

  /** Reads the terminal settings. */
  termios(): TermiosInfo {
    const t = new Uint8Array(TERMIOS_SIZE);
    if (libc().tcgetattr(this.#fd, t) < 0) throw sysError(`tcgetattr ${this.path}`, errno());
    const dv = new DataView(t.buffer);
    const t2 = new Uint8Array(TERMIOS2_SIZE);
    if (libc().ioctl(this.#fd, BigInt(TCGETS2), t2) < 0) {
      throw sysError(`TCGETS2 ${this.path}`, errno());
    }
    const dv2 = new DataView(t2.buffer);
    return {
      iflag: dv.getUint32(OFF_IFLAG, true),
      oflag: dv.getUint32(OFF_OFLAG, true),
      cflag: dv.getUint32(OFF_CFLAG, true),
      lflag: dv.getUint32(OFF_LFLAG, true),
      vmin: t[OFF_CC + VMIN],
      vtime: t[OFF_CC + VTIME],
      inputSpeed: BAUD_RATES.get(libc().cfgetispeed(t)),
      outputSpeed: BAUD_RATES.get(libc().cfgetospeed(t)),
      kernelInputSpeed: dv2.getUint32(OFF2_ISPEED, true),
      kernelOutputSpeed: dv2.getUint32(OFF2_OSPEED, true),
    };
  }

  /**
   * Puts the line in raw mode (`cfmakeraw`, VMIN=1, VTIME=0) with the given framing, flow
   * control and speed.
   */
  configure(o: Required<OpenOptions>): void {
    const F = TermiosFlags;
    const t = new Uint8Array(TERMIOS_SIZE);
    if (libc().tcgetattr(this.#fd, t) < 0) throw sysError(`tcgetattr ${this.path}`, errno());
    libc().cfmakeraw(t);
    const dv = new DataView(t.buffer);
    let cflag = dv.getUint32(OFF_CFLAG, true);
    let iflag = dv.getUint32(OFF_IFLAG, true);
    cflag &= ~(F.CSIZE | F.CSTOPB | F.PARENB | F.PARODD | F.CMSPAR | F.CRTSCTS | F.HUPCL);
    cflag |= { 5: F.CS5, 6: F.CS6, 7: F.CS7, 8: F.CS8 }[o.dataBits];
    cflag |= F.CLOCAL | F.CREAD;
    if (o.stopBits !== 1) cflag |= F.CSTOPB; // 1.5 is 2 on Linux
    switch (o.parity) {
      case "none":
        break;
      case "even":
        cflag |= F.PARENB;
        break;
      case "odd":
        cflag |= F.PARENB | F.PARODD;
        break;
      case "mark":
        cflag |= F.PARENB | F.PARODD | F.CMSPAR;
        break;
      case "space":
        cflag |= F.PARENB | F.CMSPAR;
        break;
      default:
        throw new SerialBindingError(`unsupported parity ${JSON.stringify(o.parity)}`);
    }
    if (o.parity !== "none") iflag |= F.INPCK;
    if (o.rtscts) cflag |= F.CRTSCTS;
    if (o.hupcl) cflag |= F.HUPCL;
    iflag &= ~(F.IXON | F.IXOFF | F.IXANY);
    if (o.xon) iflag |= F.IXON;
    if (o.xoff) iflag |= F.IXOFF;
    if (o.xany) iflag |= F.IXANY;
    // Unsigned 32-bit: CRTSCTS is bit 31.
    dv.setUint32(OFF_CFLAG, cflag >>> 0, true);
    dv.setUint32(OFF_IFLAG, iflag >>> 0, true);
    t[OFF_CC + VMIN] = 1;
    t[OFF_CC + VTIME] = 0;
    const code = BAUD_CODES.get(o.baudRate);
    if (code !== undefined) {
      libc().cfsetispeed(t, code);
      libc().cfsetospeed(t, code);
    }
    if (libc().tcsetattr(this.#fd, TCSANOW, t) < 0) {
      throw sysError(`tcsetattr ${this.path}`, errno());
    }
    if (code === undefined) this.setCustomSpeed(o.baudRate);
  }

  /** Sets the speed: a `Bnnnn` code when one exists, else `TCSETS2` with `BOTHER`. */
  setSpeed(baudRate: number): void {
    if (!Number.isInteger(baudRate) || baudRate <= 0) {
      throw new SerialBindingError(`invalid baud rate ${baudRate}`, { errno: Errno.EINVAL });
    }
    const code = BAUD_CODES.get(baudRate);
    if (code === undefined) return this.setCustomSpeed(baudRate);
    const t = new Uint8Array(TERMIOS_SIZE);
    if (libc().tcgetattr(this.#fd, t) < 0) throw sysError(`tcgetattr ${this.path}`, errno());
    libc().cfsetispeed(t, code);
    libc().cfsetospeed(t, code);
    if (libc().tcsetattr(this.#fd, TCSANOW, t) < 0) {
      throw sysError(`tcsetattr ${this.path}`, errno());
    }
  }

  /** Sets an arbitrary speed through `TCSETS2` and `BOTHER`. */
  setCustomSpeed(baudRate: number): void {
    const t2 = new Uint8Array(TERMIOS2_SIZE);
    const dv = new DataView(t2.buffer);
    if (libc().ioctl(this.#fd, BigInt(TCGETS2), t2) < 0) {
      throw sysError(`TCGETS2 ${this.path}`, errno());
    }
    const F = TermiosFlags;
    let cflag = dv.getUint32(OFF_CFLAG, true);
    cflag &= ~(F.CBAUD | (F.CBAUD << IBSHIFT));
    cflag |= F.BOTHER | (F.BOTHER << IBSHIFT);
    dv.setUint32(OFF_CFLAG, cflag >>> 0, true);
    dv.setUint32(OFF2_ISPEED, baudRate, true);
    dv.setUint32(OFF2_OSPEED, baudRate, true);
    if (libc().ioctl(this.#fd, BigInt(TCSETS2), t2) < 0) {
      throw sysError(`TCSETS2 ${baudRate} on ${this.path}`, errno());
    }
  }

  /** Takes an advisory exclusive lock; throws `EAGAIN` ("locked") when another holder has it. */
  lock(): void {
    if (libc().flock(this.#fd, LOCK_EX | LOCK_NB) < 0) {
      const e = errno();
      if (e === Errno.EAGAIN) {
        throw new SerialBindingError(`${this.path} is locked by another process`, { errno: e });
      }
      throw sysError(`flock ${this.path}`, e);
    }
  }

  /** Modem line bits through TIOCMGET; `undefined` when the device has no modem lines. */
  modemBits(): number | undefined {
    const v = new Int32Array(1);
    if (libc().ioctl(this.#fd, BigInt(TIOCMGET), v) < 0) {
      const e = errno();
      if (e === Errno.ENOTTY || e === Errno.EINVAL || e === Errno.ENOTSUP) return undefined;
      throw sysError(`TIOCMGET ${this.path}`, e);
    }
    return v[0];
  }

  /** Sets modem line bits through TIOCMSET; `false` when the device has no modem lines. */
  setModemBits(bits: number): boolean {
    const v = new Int32Array([bits]);
    if (libc().ioctl(this.#fd, BigInt(TIOCMSET), v) < 0) {
      const e = errno();
      if (e === Errno.ENOTTY || e === Errno.EINVAL || e === Errno.ENOTSUP) return false;
      throw sysError(`TIOCMSET ${this.path}`, e);
    }
    return true;
  }

  /** Starts (`true`) or stops a break condition. */
  setBreak(on: boolean): void {
    if (libc().ioctl(this.#fd, BigInt(on ? TIOCSBRK : TIOCCBRK), new Uint8Array(0)) < 0) {
      throw sysError(`${on ? "TIOCSBRK" : "TIOCCBRK"} ${this.path}`, errno());
    }
  }

  /** Discards received-but-unread and written-but-untransmitted data. */
  flush(): void {
    if (libc().tcflush(this.#fd, TCIOFLUSH) < 0) throw sysError(`tcflush ${this.path}`, errno());
  }

  /** Waits (on a worker thread) until all written data was transmitted. */
  async drain(): Promise<void> {
    if (!this.#open) throw this.#refused(`drain ${this.path}`);
    const p = libc().tcdrain(this.#fd);
    this.#waits.add(p);
    try {
      const rc = await p;
      // errno of a nonblocking call lives on the worker thread; report generically.
      if (rc < 0 && this.#open) throw new SerialBindingError(`tcdrain ${this.path} failed`);
    } finally {
      this.#waits.delete(p);
    }
  }

  /** Wakes pending waits (they reject with `canceled`), then closes the descriptor. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#open = false;
    this.#closing = (async () => {
      const one = new Uint8Array(8);
      new DataView(one.buffer).setBigUint64(0, 1n, true);
      libc().write(this.#wake, one, 8n);
      // tcdrain cannot be woken: it ends when output drains or the line hangs up.
      while (this.#waits.size > 0) await Promise.allSettled([...this.#waits]);
      libc().close(this.#fd);
      libc().close(this.#wake);
      this.#fd = -1;
      this.#wake = -1;
    })();
    return this.#closing;
  }
}

// ---------------------------------------------------------------------------------------------
// Pseudo terminals
// ---------------------------------------------------------------------------------------------

/** A pseudo terminal pair made with `openpty(3)`. */
export interface PtyPair {
  /** The master side (what QEMU holds for a guest console). */
  master: TtyFd;
  /** The slave side's descriptor, opened by `openpty`; close it if something else opens it. */
  slave: TtyFd;
  /** The slave's path, `/dev/pts/N`: open it with the binding like any serial device. */
  slavePath: string;
}

/**
 * Makes a pseudo terminal pair. The slave starts in the kernel's default cooked mode (echo,
 * canonical input, output post-processing), like a fresh serial console.
 */
export function openPty(): PtyPair {
  const m = new Int32Array(1), s = new Int32Array(1);
  if (libc().openpty(m, s, null, null, null) < 0) throw sysError("openpty", errno());
  const name = new Uint8Array(128);
  const rc = libc().ttyname_r(s[0], name, 128n);
  if (rc !== 0) {
    libc().close(m[0]);
    libc().close(s[0]);
    throw sysError("ttyname_r", rc);
  }
  const slavePath = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
  return {
    master: TtyFd.adopt(m[0], `${slavePath} (master)`),
    slave: TtyFd.adopt(s[0], slavePath),
    slavePath,
  };
}

// ---------------------------------------------------------------------------------------------
// The serialport binding
// ---------------------------------------------------------------------------------------------

const DEFAULTS = {
  dataBits: 8,
  lock: true,
  stopBits: 1,
  parity: "none",
  rtscts: false,
  xon: false,
  xoff: false,
  xany: false,
  hupcl: true,
} as const;

/** An open port: serialport's `BindingPortInterface` over a {@link TtyFd}. */
export class DenoBindingPort implements BindingPortInterface {
  /** The options the port was opened with, defaults filled in. */
  readonly openOptions: Required<OpenOptions>;
  #tty: TtyFd;
  #writing = false;

  /** A port over the already opened and configured `tty`. */
  constructor(tty: TtyFd, options: Required<OpenOptions>) {
    this.#tty = tty;
    this.openOptions = options;
  }

  /** The underlying descriptor wrapper (termios read-back, diagnostics). */
  get tty(): TtyFd {
    return this.#tty;
  }

  get isOpen(): boolean {
    return this.#tty.isOpen;
  }

  async close(): Promise<void> {
    if (!this.#tty.isOpen) throw new SerialBindingError("Port is not open");
    await this.#tty.close();
  }

  async read(
    buffer: Buffer,
    offset: number,
    length: number,
  ): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (!Buffer.isBuffer(buffer)) throw new TypeError('"buffer" is not a Buffer');
    if (!this.isOpen) {
      this.#tty.droppedAfterClose++;
      throw canceled("read");
    }
    const n = await this.#tty.read(buffer, offset, length);
    if (n === HANGUP) {
      throw new SerialBindingError(`${this.openOptions.path}: the other end hung up`, {
        disconnect: true,
        errno: Errno.EIO,
      });
    }
    return { buffer, bytesRead: n };
  }

  async write(buffer: Buffer): Promise<void> {
    if (!Buffer.isBuffer(buffer)) throw new TypeError('"buffer" is not a Buffer');
    if (!this.isOpen) throw new SerialBindingError("Port is not open");
    if (this.#writing) throw new SerialBindingError("Overlapping writes are not supported");
    this.#writing = true;
    try {
      // Copy: the stream may reuse the buffer once we resolve, the kernel copies anyway.
      await this.#tty.write(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length));
    } finally {
      this.#writing = false;
    }
  }

  update(options: UpdateOptions): Promise<void> {
    if (!this.isOpen) return Promise.reject(new SerialBindingError("Port is not open"));
    try {
      this.#tty.setSpeed(options.baudRate);
      this.openOptions.baudRate = options.baudRate;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  set(options: SetOptions): Promise<void> {
    if (!this.isOpen) return Promise.reject(new SerialBindingError("Port is not open"));
    try {
      const bits = this.#tty.modemBits();
      if (bits !== undefined) {
        let next = bits & ~(TIOCM_DTR | TIOCM_RTS);
        if (options.dtr ?? true) next |= TIOCM_DTR;
        if (options.rts ?? true) next |= TIOCM_RTS;
        this.#tty.setModemBits(next);
      }
      if (options.brk !== undefined) {
        try {
          this.#tty.setBreak(options.brk);
        } catch (err) {
          // Pseudo terminals have no break; only a requested break is worth an error.
          if (options.brk) throw err;
        }
      }
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get(): Promise<PortStatus> {
    if (!this.isOpen) return Promise.reject(new SerialBindingError("Port is not open"));
    try {
      const bits = this.#tty.modemBits() ?? 0;
      return Promise.resolve({
        cts: (bits & TIOCM_CTS) !== 0,
        dsr: (bits & TIOCM_DSR) !== 0,
        dcd: (bits & TIOCM_CAR) !== 0,
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  getBaudRate(): Promise<{ baudRate: number }> {
    if (!this.isOpen) return Promise.reject(new SerialBindingError("Port is not open"));
    try {
      return Promise.resolve({ baudRate: this.#tty.termios().kernelOutputSpeed });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flush(): Promise<void> {
    if (!this.isOpen) return Promise.reject(new SerialBindingError("Port is not open"));
    try {
      this.#tty.flush();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async drain(): Promise<void> {
    if (!this.isOpen) throw new SerialBindingError("Port is not open");
    // SerialPortStream only drains after its pending write finished; tcdrain does the rest.
    await this.#tty.drain();
  }
}

/** Port metadata; `path` always, the rest when /sys tells. */
export interface DenoPortInfo extends PortInfo {
  /** Kernel driver name (`ftdi_sio`, `cp210x`, `cdc_acm`, `serial8250`, ...). */
  driver: string | undefined;
}

async function readSys(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

/** The USB device directory above a tty's sysfs device, if the tty is on USB. */
async function usbDeviceDir(devDir: string): Promise<string | undefined> {
  let dir: string;
  try {
    dir = await Deno.realPath(devDir);
  } catch {
    return undefined;
  }
  for (let i = 0; i < 6 && dir.startsWith("/sys/"); i++) {
    if (await readSys(`${dir}/idVendor`) !== undefined) return dir;
    dir = dir.slice(0, dir.lastIndexOf("/"));
  }
  return undefined;
}

const LIST_PATTERNS = [/^ttyUSB\d+$/, /^ttyACM\d+$/, /^ttyS\d+$/, /^ttyAMA\d+$/];

/**
 * Lists serial devices: /dev/ttyUSB*, /dev/ttyACM*, /dev/ttyS* (only those the 8250 driver
 * found hardware for) and /dev/ttyAMA*, with USB vendor/product/serial from /sys and the
 * /dev/serial/by-id name as `pnpId`.
 */
export async function listPorts(): Promise<DenoPortInfo[]> {
  const byId = new Map<string, string>();
  try {
    for await (const e of Deno.readDir("/dev/serial/by-id")) {
      try {
        const target = await Deno.realPath(`/dev/serial/by-id/${e.name}`);
        byId.set(target, e.name);
      } catch { /* dangling link */ }
    }
  } catch { /* no udev links */ }
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir("/sys/class/tty")) {
      if (LIST_PATTERNS.some((re) => re.test(e.name))) names.push(e.name);
    }
  } catch {
    /* no sysfs: fall back to /dev */
    for await (const e of Deno.readDir("/dev")) {
      if (LIST_PATTERNS.some((re) => re.test(e.name))) names.push(e.name);
    }
  }
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const out: DenoPortInfo[] = [];
  for (const name of names) {
    const sys = `/sys/class/tty/${name}`;
    if (name.startsWith("ttyS")) {
      // The 8250 driver registers placeholder ports; type 0 (PORT_UNKNOWN) has no hardware.
      const type = await readSys(`${sys}/type`);
      if (type === undefined || type === "0") continue;
    }
    const driverLink = await Deno.realPath(`${sys}/device/driver`).catch(() => undefined);
    const usb = await usbDeviceDir(`${sys}/device`);
    const path = `/dev/${name}`;
    out.push({
      path,
      manufacturer: usb ? await readSys(`${usb}/manufacturer`) : undefined,
      serialNumber: usb ? await readSys(`${usb}/serial`) : undefined,
      pnpId: byId.get(path),
      locationId: usb ? usb.slice(usb.lastIndexOf("/") + 1) : undefined,
      productId: usb ? await readSys(`${usb}/idProduct`) : undefined,
      vendorId: usb ? await readSys(`${usb}/idVendor`) : undefined,
      driver: driverLink ? driverLink.slice(driverLink.lastIndexOf("/") + 1) : undefined,
    });
  }
  return out;
}

/**
 * The binding: pass it as `binding` to `SerialPortStream`. Options are serialport's
 * `OpenOptions`; defaults are 8N1, no flow control, `lock: true`, `hupcl: true`.
 */
export const DenoSerialBinding: BindingInterface<DenoBindingPort, OpenOptions, DenoPortInfo> = {
  list: listPorts,
  open(options: OpenOptions): Promise<DenoBindingPort> {
    if (!options || typeof options.path !== "string" || options.path === "") {
      return Promise.reject(new TypeError('"path" is not a valid port'));
    }
    if (!Number.isInteger(options.baudRate) || options.baudRate <= 0) {
      return Promise.reject(new TypeError('"baudRate" is not a valid baudRate'));
    }
    const full: Required<OpenOptions> = { ...DEFAULTS, ...options } as Required<OpenOptions>;
    let tty: TtyFd | undefined;
    try {
      tty = TtyFd.open(full.path);
      if (full.lock) tty.lock();
      tty.configure(full);
      return Promise.resolve(new DenoBindingPort(tty, full));
    } catch (err) {
      if (tty) void tty.close();
      return Promise.reject(err);
    }
  },
};
