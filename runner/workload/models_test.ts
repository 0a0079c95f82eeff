import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import {
  MOBILENET_V1,
  modelFile,
  modelFiles,
  MODELS_DIR,
  readLabels,
  readManifest,
  YOLOV5N,
} from "./models.ts";

Deno.test("models: every vendored file matches the manifest, and has its licence beside it", async () => {
  const entries = await readManifest();
  assert.equal(entries.length, 31 + 1 + 4 + 2);
  for (const e of entries) {
    assert.equal(await modelFile(e.path), `${MODELS_DIR}/${e.path}`);
    for (const lic of e.licence.match(/[\w.-]+\/(?:LICENSE|COPYRIGHT)[\w.-]*/g) ?? []) {
      assert.ok((await Deno.stat(`${MODELS_DIR}/${lic}`)).isFile, `${e.path}: ${lic}`);
    }
    assert.match(e.source, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}:/);
  }
  assert.equal((await modelFiles(MOBILENET_V1)).length, 31);
  assert.match((await modelFiles(YOLOV5N))[0], /yolov5\/yolov5n-int8\.tflite$/);
  // The YOLOv5 weights (GPL-3.0) are alone in their folder with their licence.
  const yolo = [...Deno.readDirSync(`${MODELS_DIR}/yolov5`)].map((e) => e.name).sort();
  assert.deepEqual(yolo, ["LICENSE.GPL-3.0", "yolov5n-int8.tflite"]);
  assert.equal((await readLabels("labels/imagenet_labels.txt")).length, 1001);
  assert.equal((await readLabels("labels/coco_80_labels_list.txt")).length, 80);
});

async function withCopy(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-models-" });
  try {
    await Deno.mkdir(`${dir}/labels`);
    await Deno.copyFile(`${MODELS_DIR}/manifest.json`, `${dir}/manifest.json`);
    await Deno.copyFile(
      `${MODELS_DIR}/labels/coco_80_labels_list.txt`,
      `${dir}/labels/coco_80_labels_list.txt`,
    );
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const refused = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UserInputError, String(e));
  assert.match((e as Error).message, re);
  return true;
};

Deno.test("models: a changed, missing or unlisted file is refused before use", async () => {
  await withCopy(async (dir) => {
    const f = `${dir}/labels/coco_80_labels_list.txt`;
    assert.equal(await modelFile("labels/coco_80_labels_list.txt", dir), f);
    const text = await Deno.readTextFile(f);
    await Deno.writeTextFile(f, text.replace("person", "persoN")); // same size, other bytes
    // A fresh process would check again; use another path spelling to skip the memo.
    await assert.rejects(
      modelFile("labels/coco_80_labels_list.txt", `${dir}/.`),
      refused(/does not match models\/manifest\.json \(sha256 [0-9a-f]{64}/),
    );
    await Deno.writeTextFile(f, "version https://git-lfs.github.com/spec/v1\n");
    await assert.rejects(
      modelFile("labels/coco_80_labels_list.txt", `${dir}/./.`),
      refused(/43 bytes, expected 621 bytes/),
    );
    await assert.rejects(modelFile("yolov5/yolov5n-int8.tflite", dir), refused(/is missing/));
    await assert.rejects(modelFile("nothing.tflite", dir), refused(/is not in .*manifest\.json/));
  });
});

Deno.test("models: a broken manifest is refused with what to do", async () => {
  await withCopy(async (dir) => {
    const m = `${dir}/manifest.json`;
    const good = JSON.parse(await Deno.readTextFile(m));
    const cases: [unknown, RegExp][] = [
      ["{", /is not JSON/],
      [{ ...good, format: 2 }, /format/],
      [{ format: 1, files: [{ ...good.files[0], path: "../../etc/passwd" }] }, /files\.0\.path/],
      [{ format: 1, files: [{ ...good.files[0], sha256: "abc" }] }, /files\.0\.sha256/],
      [{ format: 1, files: [{ ...good.files[0], extra: 1 }] }, /files\.0/],
      [{ format: 1, files: [good.files[0], good.files[0]] }, /listed twice/],
    ];
    for (const [content, re] of cases) {
      await Deno.writeTextFile(m, typeof content === "string" ? content : JSON.stringify(content));
      await assert.rejects(readManifest(dir), refused(re));
    }
    await Deno.remove(m);
    await assert.rejects(readManifest(dir), refused(/cannot read the models manifest/));
  });
});
