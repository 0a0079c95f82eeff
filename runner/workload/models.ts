/**
 * The vendored models, images and labels of the NPU workloads (`models/` at the top of the
 * checkout), each file checked against `models/manifest.json` (size and SHA-256) when it is
 * loaded: a file that differs is refused before any workload runs.
 *
 * @module
 */

import { z } from "zod";
import { UserInputError } from "../errors.ts";
import { sha256File } from "../debian/cache.ts";

/** The `models/` folder of this checkout. */
export const MODELS_DIR: string = new URL("../../models", import.meta.url).pathname;

const entrySchema = z.object({
  path: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/).refine((p) =>
    !p.split("/").includes("..")
  ),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  source: z.string().min(1),
  licence: z.string().min(1),
}).strict();

const manifestSchema = z.object({
  format: z.literal(1),
  files: z.array(entrySchema).min(1),
}).strict();

/** One file of the manifest. */
export interface ManifestEntry {
  /** Path relative to the models folder, e.g. `yolov5/yolov5n-int8.tflite`. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** SHA-256 of the content, lower-case hex. */
  sha256: string;
  /** Where it comes from: `owner/repo@commit:path`. */
  source: string;
  /** Its licence: the licence file(s) beside it. */
  licence: string;
}

/** Read and validate `manifest.json` of a models folder. */
export async function readManifest(dir: string = MODELS_DIR): Promise<ManifestEntry[]> {
  const file = `${dir}/manifest.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new UserInputError(
      `cannot read the models manifest ${file}: ${(err as Error).message}`,
      "restore it with git checkout -- models/",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserInputError(
      `${file} is not JSON: ${(err as Error).message}`,
      "restore it with git checkout -- models/",
    );
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserInputError(
      `${file}: ${issue.path.join(".") || "(top)"}: ${issue.message}`,
      "restore it with git checkout -- models/",
    );
  }
  const seen = new Set<string>();
  for (const e of parsed.data.files) {
    if (seen.has(e.path)) {
      throw new UserInputError(`${file}: ${e.path} is listed twice`, "restore the manifest");
    }
    seen.add(e.path);
  }
  return parsed.data.files;
}

const verified = new Map<string, string>();

/**
 * The absolute path of a manifest file after checking its size and SHA-256 (once per process
 * and path).
 *
 * @param rel Path relative to the models folder, as in the manifest.
 * @throws {UserInputError} the file is not in the manifest, is missing, or differs from it.
 */
export async function modelFile(rel: string, dir: string = MODELS_DIR): Promise<string> {
  const abs = `${dir}/${rel}`;
  const done = verified.get(abs);
  if (done) return done;
  const entry = (await readManifest(dir)).find((e) => e.path === rel);
  if (!entry) {
    throw new UserInputError(
      `${rel} is not in ${dir}/manifest.json`,
      "name a file the manifest lists (models/README.md)",
    );
  }
  let size: number;
  try {
    size = (await Deno.stat(abs)).size;
  } catch {
    throw new UserInputError(`${abs} is missing`, "restore it with git checkout -- models/");
  }
  const sha = size === entry.size ? await sha256File(abs) : "";
  if (sha !== entry.sha256) {
    throw new UserInputError(
      `${abs} does not match models/manifest.json (${
        size === entry.size ? `sha256 ${sha}` : `${size} bytes`
      }, expected ${entry.size} bytes, sha256 ${entry.sha256})`,
      "restore it with git checkout -- models/ (a Git LFS pointer or a partial copy is not the model)",
    );
  }
  verified.set(abs, abs);
  return abs;
}

/** A model as the workload program runs it: one file or a chain of files run in order. */
export interface WorkloadModel {
  /** Short name, e.g. `mobilenet_v1_1.0_224_quant`. */
  name: string;
  /** What the program does with its output. */
  task: "classify" | "detect";
  /** Manifest paths, in chain order. */
  files: string[];
  /** The labels file (manifest path) for its class indices. */
  labels: string;
}

/** MobileNetV1 1.0/224 uint8: Mesa's 31 single-operator slices, chained. */
export const MOBILENET_V1: WorkloadModel = {
  name: "mobilenet_v1_1.0_224_quant",
  task: "classify",
  files: Array.from({ length: 31 }, (_, i) => `mobilenet_v1_1.0_224_quant/mb${i}.tflite`),
  labels: "labels/imagenet_labels.txt",
};

/** YOLOv5n int8, 640×640 (the YOLOv5 decode is the same for the operator's YOLOv5s). */
export const YOLOV5N: WorkloadModel = {
  name: "yolov5n-int8",
  task: "detect",
  files: ["yolov5/yolov5n-int8.tflite"],
  labels: "labels/coco_80_labels_list.txt",
};

/** Every file of a model checked, as absolute paths in chain order. */
export async function modelFiles(
  model: WorkloadModel,
  dir: string = MODELS_DIR,
): Promise<string[]> {
  const out: string[] = [];
  for (const f of model.files) out.push(await modelFile(f, dir));
  return out;
}

/** A labels file, checked, as one label per line (the last empty line dropped). */
export async function readLabels(rel: string, dir: string = MODELS_DIR): Promise<string[]> {
  const text = await Deno.readTextFile(await modelFile(rel, dir));
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}
