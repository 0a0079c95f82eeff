// SPDX-License-Identifier: MIT
// rkwl: rkhil's workload program. Runs a TensorFlow Lite model, or a chain of models whose
// outputs feed the next one's input (Mesa's 31 single-operator slices of MobileNetV1), on one
// image, through the TFLite C API, with no delegate (cpu backend) or with an external delegate
// loaded by hand (Mesa Teflon: rocket backend). Every line it prints on stdout starts with
// "rkwl "; the format is in README.md beside this file and parsed by
// runner/workload/rkwl_output.ts. Exit status: 0 done, 1 the run failed, 2 bad arguments or
// inputs, 3 the delegate gave no device (a SKIP of its backend), 4 the delegate library could
// not be loaded.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize2.h>
#include <tensorflow/lite/c/c_api.h>

#define RKWL_FORMAT 1
#define MAX_MODELS 64

enum { EXIT_DONE = 0, EXIT_RUN = 1, EXIT_INPUT = 2, EXIT_NO_DEVICE = 3, EXIT_DELEGATE_LOAD = 4 };

typedef TfLiteDelegate *(*create_fn)(const char *const *, const char *const *, size_t,
                                     void (*)(const char *));
typedef void (*destroy_fn)(TfLiteDelegate *);

struct opts {
  const char *models[MAX_MODELS];
  int nmodels;
  const char *image;
  const char *delegate;
  const char *task;    // classify | detect
  const char *fit;     // resize | letterbox
  const char *range;   // raw | unit
  int top;
  int warmup;
  int loops;
  int threads;
  double conf;
  int max_boxes;
};

static void usage(void) {
  fprintf(stderr,
          "usage: rkwl --model M.tflite [--model NEXT.tflite ...] --image IMG (bmp, jpg, png)\n"
          "            [--task classify|detect] [--top K] [--conf T] [--max-boxes N]\n"
          "            [--fit resize|letterbox] [--range raw|unit]\n"
          "            [--warmup N] [--loops N] [--threads N] [--delegate libteflon.so]\n");
}

// One line, no newlines inside: TFLite and delegates print multi-line text.
static void put_text(const char *tag, const char *text) {
  printf("rkwl %s ", tag);
  for (const char *p = text; *p; p++) {
    unsigned char c = (unsigned char)*p;
    putchar(c == '\n' || c == '\r' || c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : c);
  }
  putchar('\n');
  fflush(stdout);
}

static int fail(int code, const char *stage, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char line[1200];
  snprintf(line, sizeof line, "%s: %s", stage, buf);
  put_text("error", line);
  printf("rkwl end %d\n", code);
  fflush(stdout);
  return code;
}

static void tflite_reporter(void *user, const char *fmt, va_list args) {
  (void)user;
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, args);
  put_text("tflite", buf);
}

static void delegate_reporter(const char *msg) { put_text("delegate-error", msg); }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *type_name(TfLiteType t) {
  switch (t) {
  case kTfLiteFloat32: return "float32";
  case kTfLiteUInt8: return "uint8";
  case kTfLiteInt8: return "int8";
  case kTfLiteInt32: return "int32";
  case kTfLiteInt16: return "int16";
  default: return "other";
  }
}

static void dims_text(const TfLiteTensor *t, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 0; i < TfLiteTensorNumDims(t) && at + 16 < n; i++) {
    at += snprintf(buf + at, n - at, i ? "x%d" : "%d", TfLiteTensorDim(t, i));
  }
}

static void describe(const char *what, int index, const TfLiteTensor *t) {
  char dims[128];
  dims_text(t, dims, sizeof dims);
  TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
  printf("rkwl %s %d %s %s %.9g %d\n", what, index, type_name(TfLiteTensorType(t)), dims, q.scale,
         q.zero_point);
}

// The real value of element i of a tensor (dequantised).
static double real_at(const TfLiteTensor *t, size_t i) {
  const void *d = TfLiteTensorData(t);
  TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
  switch (TfLiteTensorType(t)) {
  case kTfLiteFloat32: return ((const float *)d)[i];
  case kTfLiteUInt8: return q.scale * ((int)((const uint8_t *)d)[i] - q.zero_point);
  case kTfLiteInt8: return q.scale * ((int)((const int8_t *)d)[i] - q.zero_point);
  default: return NAN;
  }
}

static size_t elem_size(TfLiteType t) {
  return t == kTfLiteFloat32 ? 4 : (t == kTfLiteUInt8 || t == kTfLiteInt8) ? 1 : 0;
}

static int quantize(double real, TfLiteQuantizationParams q, int lo, int hi) {
  double v = q.scale > 0 ? nearbyint(real / q.scale) + q.zero_point : real;
  return v < lo ? lo : v > hi ? hi : (int)v;
}

// Write element i of tensor dst from a real value.
static void put_real(TfLiteTensor *t, size_t i, double real) {
  void *d = TfLiteTensorData(t);
  TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
  switch (TfLiteTensorType(t)) {
  case kTfLiteFloat32: ((float *)d)[i] = (float)real; break;
  case kTfLiteUInt8: ((uint8_t *)d)[i] = (uint8_t)quantize(real, q, 0, 255); break;
  case kTfLiteInt8: ((int8_t *)d)[i] = (int8_t)quantize(real, q, -128, 127); break;
  default: break;
  }
}

// Copy one model's output into the next one's input: bytes when the encodings match, through
// real values otherwise. Returns 0, or -1 when the shapes differ.
static int feed(const TfLiteTensor *src, TfLiteTensor *dst) {
  TfLiteType st = TfLiteTensorType(src), dt = TfLiteTensorType(dst);
  size_t ss = elem_size(st), ds = elem_size(dt);
  if (!ss || !ds) return -1;
  size_t n = TfLiteTensorByteSize(src) / ss;
  if (n != TfLiteTensorByteSize(dst) / ds) return -1;
  TfLiteQuantizationParams sq = TfLiteTensorQuantizationParams(src);
  TfLiteQuantizationParams dq = TfLiteTensorQuantizationParams(dst);
  if (st == dt && (st == kTfLiteFloat32 || (sq.scale == dq.scale && sq.zero_point == dq.zero_point))) {
    memcpy(TfLiteTensorData(dst), TfLiteTensorData(src), TfLiteTensorByteSize(src));
    return 0;
  }
  for (size_t i = 0; i < n; i++) put_real(dst, i, real_at(src, i));
  return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

static int parse_args(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.task = "classify", .fit = NULL, .range = NULL, .top = 5, .warmup = 0,
                     .loops = 1, .threads = 1, .conf = 0.25, .max_boxes = 2000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return fail(EXIT_INPUT, "usage", "%s needs a value", a);
    i++;
    if (!strcmp(a, "--model")) {
      if (o->nmodels == MAX_MODELS) return fail(EXIT_INPUT, "usage", "more than %d models", MAX_MODELS);
      o->models[o->nmodels++] = v;
    } else if (!strcmp(a, "--image")) o->image = v;
    else if (!strcmp(a, "--delegate")) o->delegate = v;
    else if (!strcmp(a, "--task")) {
      if (strcmp(v, "classify") && strcmp(v, "detect"))
        return fail(EXIT_INPUT, "usage", "--task is classify or detect, not %s", v);
      o->task = v;
    } else if (!strcmp(a, "--fit")) {
      if (strcmp(v, "resize") && strcmp(v, "letterbox"))
        return fail(EXIT_INPUT, "usage", "--fit is resize or letterbox, not %s", v);
      o->fit = v;
    } else if (!strcmp(a, "--range")) {
      if (strcmp(v, "raw") && strcmp(v, "unit"))
        return fail(EXIT_INPUT, "usage", "--range is raw or unit, not %s", v);
      o->range = v;
    } else if (!strcmp(a, "--top")) {
      if (parse_int(v, 1, 100, &o->top)) return fail(EXIT_INPUT, "usage", "--top is 1..100");
    } else if (!strcmp(a, "--warmup")) {
      if (parse_int(v, 0, 1000, &o->warmup)) return fail(EXIT_INPUT, "usage", "--warmup is 0..1000");
    } else if (!strcmp(a, "--loops")) {
      if (parse_int(v, 1, 100000, &o->loops)) return fail(EXIT_INPUT, "usage", "--loops is 1..100000");
    } else if (!strcmp(a, "--threads")) {
      if (parse_int(v, 1, 64, &o->threads)) return fail(EXIT_INPUT, "usage", "--threads is 1..64");
    } else if (!strcmp(a, "--max-boxes")) {
      if (parse_int(v, 1, 100000, &o->max_boxes)) return fail(EXIT_INPUT, "usage", "--max-boxes is 1..100000");
    } else if (!strcmp(a, "--conf")) {
      char *end;
      o->conf = strtod(v, &end);
      if (*end || end == v || !(o->conf > 0 && o->conf < 1))
        return fail(EXIT_INPUT, "usage", "--conf is a number between 0 and 1");
    } else {
      usage();
      return fail(EXIT_INPUT, "usage", "unknown option %s", a);
    }
  }
  if (!o->nmodels || !o->image) {
    usage();
    return fail(EXIT_INPUT, "usage", "--model and --image are required");
  }
  int detect = !strcmp(o->task, "detect");
  if (!o->fit) o->fit = detect ? "letterbox" : "resize";
  if (!o->range) o->range = detect ? "unit" : "raw";
  return 0;
}

// Run the delegate library's create function with stderr caught, so that what it says (Teflon:
// "Couldn't open kernel device") becomes part of the documented skip line.
static TfLiteDelegate *create_delegate(create_fn create, char *said, size_t n) {
  said[0] = 0;
  int fds[2];
  if (pipe(fds)) return create(NULL, NULL, 0, delegate_reporter);
  fcntl(fds[1], F_SETFL, O_NONBLOCK); // never block on a chatty library: excess is dropped
  fflush(stderr);
  int saved = dup(2);
  dup2(fds[1], 2);
  TfLiteDelegate *d = create(NULL, NULL, 0, delegate_reporter);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  size_t at = 0;
  ssize_t r;
  while (at + 1 < n && (r = read(fds[0], said + at, n - 1 - at)) > 0) at += (size_t)r;
  said[at] = 0;
  close(fds[0]);
  if (at) fputs(said, stderr);
  while (at && (said[at - 1] == '\n' || said[at - 1] == ' ')) said[--at] = 0;
  return d;
}

struct box {
  int row, cls;
  double cx, cy, w, h, obj, score;
};

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  printf("rkwl version %d tflite=%s\n", RKWL_FORMAT, TfLiteVersion());

  // Delegate first: a target without the device is a skip before any work.
  void *lib = NULL;
  create_fn create = NULL;
  destroy_fn destroy = NULL;
  if (o.delegate) {
    lib = dlopen(o.delegate, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fail(EXIT_DELEGATE_LOAD, "delegate", "dlopen: %s", dlerror());
    create = (create_fn)dlsym(lib, "tflite_plugin_create_delegate");
    destroy = (destroy_fn)dlsym(lib, "tflite_plugin_destroy_delegate");
    if (!create || !destroy)
      return fail(EXIT_DELEGATE_LOAD, "delegate",
                  "%s has no tflite_plugin_create_delegate/tflite_plugin_destroy_delegate",
                  o.delegate);
  }
  TfLiteDelegate *delegates[MAX_MODELS] = {0};
  if (o.delegate) {
    for (int i = 0; i < o.nmodels; i++) {
      char said[2048];
      delegates[i] = create_delegate(create, said, sizeof said);
      if (!delegates[i]) {
        char line[2300];
        snprintf(line, sizeof line, "%s: %s", o.delegate,
                 said[0] ? said : "tflite_plugin_create_delegate returned NULL");
        put_text("no-device", line);
        printf("rkwl end %d\n", EXIT_NO_DEVICE);
        return EXIT_NO_DEVICE;
      }
    }
    printf("rkwl delegate %s\n", o.delegate);
  } else {
    printf("rkwl delegate none\n");
  }

  TfLiteModel *models[MAX_MODELS] = {0};
  TfLiteInterpreter *interps[MAX_MODELS] = {0};
  for (int i = 0; i < o.nmodels; i++) {
    models[i] = TfLiteModelCreateFromFileWithErrorReporter(o.models[i], tflite_reporter, NULL);
    if (!models[i]) return fail(EXIT_INPUT, "model", "cannot load %s", o.models[i]);
    TfLiteInterpreterOptions *opt = TfLiteInterpreterOptionsCreate();
    TfLiteInterpreterOptionsSetNumThreads(opt, o.threads);
    TfLiteInterpreterOptionsSetErrorReporter(opt, tflite_reporter, NULL);
    if (delegates[i]) TfLiteInterpreterOptionsAddDelegate(opt, delegates[i]);
    interps[i] = TfLiteInterpreterCreate(models[i], opt);
    TfLiteInterpreterOptionsDelete(opt);
    if (!interps[i]) return fail(EXIT_RUN, "interpreter", "cannot create one for %s", o.models[i]);
    if (TfLiteInterpreterGetInputTensorCount(interps[i]) != 1 ||
        TfLiteInterpreterGetOutputTensorCount(interps[i]) < 1)
      return fail(EXIT_INPUT, "model", "%s: rkwl runs models with one input tensor", o.models[i]);
    if (TfLiteInterpreterAllocateTensors(interps[i]) != kTfLiteOk)
      return fail(EXIT_RUN, "allocate", "%s", o.models[i]);
    printf("rkwl model %d %s\n", i, o.models[i]);
    describe("input", i, TfLiteInterpreterGetInputTensor(interps[i], 0));
    if (i + 1 < o.nmodels || TfLiteInterpreterGetOutputTensorCount(interps[i]) == 1)
      describe("output", i, TfLiteInterpreterGetOutputTensor(interps[i], 0));
    else
      for (int k = 0; k < TfLiteInterpreterGetOutputTensorCount(interps[i]); k++)
        describe("output", i, TfLiteInterpreterGetOutputTensor(interps[i], k));
  }
  for (int i = 0; i + 1 < o.nmodels; i++) {
    const TfLiteTensor *out = TfLiteInterpreterGetOutputTensor(interps[i], 0);
    const TfLiteTensor *in = TfLiteInterpreterGetInputTensor(interps[i + 1], 0);
    int same = elem_size(TfLiteTensorType(out)) && elem_size(TfLiteTensorType(in)) &&
               TfLiteTensorNumDims(out) == TfLiteTensorNumDims(in);
    for (int d = 0; same && d < TfLiteTensorNumDims(out); d++)
      same = TfLiteTensorDim(out, d) == TfLiteTensorDim(in, d);
    if (!same) {
      char a[128], b[128];
      dims_text(out, a, sizeof a);
      dims_text(in, b, sizeof b);
      return fail(EXIT_INPUT, "chain", "output %s %s of %s does not fit the input %s %s of %s",
                  type_name(TfLiteTensorType(out)), a, o.models[i], type_name(TfLiteTensorType(in)),
                  b, o.models[i + 1]);
    }
  }

  // The image, fitted to the first model's NHWC input.
  TfLiteTensor *input = TfLiteInterpreterGetInputTensor(interps[0], 0);
  if (TfLiteTensorNumDims(input) != 4 || TfLiteTensorDim(input, 0) != 1 ||
      TfLiteTensorDim(input, 3) != 3 || !elem_size(TfLiteTensorType(input)))
    return fail(EXIT_INPUT, "model", "input is not 1xHxWx3 float32/uint8/int8");
  int ih = TfLiteTensorDim(input, 1), iw = TfLiteTensorDim(input, 2);
  int w, h, ch;
  unsigned char *pix = stbi_load(o.image, &w, &h, &ch, 3);
  if (!pix) return fail(EXIT_INPUT, "image", "%s: %s", o.image, stbi_failure_reason());
  printf("rkwl image %s %d %d %d\n", o.image, w, h, ch);
  unsigned char *fitted = malloc((size_t)iw * ih * 3);
  if (!fitted) return fail(EXIT_RUN, "image", "out of memory");
  double scale = 1;
  int nw = iw, nh = ih, px = 0, py = 0;
  if (!strcmp(o.fit, "letterbox")) {
    scale = fmin((double)iw / w, (double)ih / h);
    nw = (int)lround(w * scale);
    nh = (int)lround(h * scale);
    px = (iw - nw) / 2;
    py = (ih - nh) / 2;
    memset(fitted, 114, (size_t)iw * ih * 3); // YOLOv5's letterbox grey
  }
  if (nw == w && nh == h) {
    for (int y = 0; y < h; y++) memcpy(fitted + ((size_t)(y + py) * iw + px) * 3, pix + (size_t)y * w * 3, (size_t)w * 3);
  } else if (!stbir_resize_uint8_linear(pix, w, h, 0, fitted + ((size_t)py * iw + px) * 3, nw, nh, iw * 3,
                                        STBIR_RGB)) {
    return fail(EXIT_RUN, "image", "resize failed");
  }
  stbi_image_free(pix);
  printf("rkwl fit %s %d %d scale=%.9g pad=%d,%d range=%s\n", o.fit, iw, ih,
         !strcmp(o.fit, "letterbox") ? scale : (double)iw / w, px, py, o.range);
  int raw = !strcmp(o.range, "raw");
  size_t n = (size_t)iw * ih * 3;
  for (size_t i = 0; i < n; i++) {
    if (raw && TfLiteTensorType(input) == kTfLiteUInt8) ((uint8_t *)TfLiteTensorData(input))[i] = fitted[i];
    else if (raw && TfLiteTensorType(input) == kTfLiteInt8) ((int8_t *)TfLiteTensorData(input))[i] = (int8_t)(fitted[i] - 128);
    else if (raw) ((float *)TfLiteTensorData(input))[i] = fitted[i];
    else put_real(input, i, fitted[i] / 255.0);
  }
  free(fitted);

  // Invokes: the chain runs as one pass; each pass is timed as a whole.
  for (int pass = 0; pass < o.warmup + o.loops; pass++) {
    double t0 = now_ms();
    for (int i = 0; i < o.nmodels; i++) {
      if (i > 0 && feed(TfLiteInterpreterGetOutputTensor(interps[i - 1], 0),
                        TfLiteInterpreterGetInputTensor(interps[i], 0)))
        return fail(EXIT_RUN, "chain", "cannot feed %s", o.models[i]);
      if (TfLiteInterpreterInvoke(interps[i]) != kTfLiteOk)
        return fail(EXIT_RUN, "invoke", "%s (pass %d)", o.models[i], pass);
    }
    double ms = now_ms() - t0;
    if (pass < o.warmup) printf("rkwl invoke warmup %d %.3f\n", pass, ms);
    else printf("rkwl invoke run %d %.3f\n", pass - o.warmup, ms);
  }

  const TfLiteTensor *out = TfLiteInterpreterGetOutputTensor(interps[o.nmodels - 1], 0);
  size_t nout = TfLiteTensorByteSize(out) / (elem_size(TfLiteTensorType(out)) ? elem_size(TfLiteTensorType(out)) : 1);
  if (!elem_size(TfLiteTensorType(out))) return fail(EXIT_INPUT, "output", "type %s is not supported", type_name(TfLiteTensorType(out)));
  if (!strcmp(o.task, "classify")) {
    // Top-k by real score; ties keep the lower class index first.
    int k = o.top < (int)nout ? o.top : (int)nout;
    int *best = calloc((size_t)k, sizeof *best);
    if (!best) return fail(EXIT_RUN, "output", "out of memory");
    int have = 0;
    for (size_t i = 0; i < nout; i++) {
      double v = real_at(out, i);
      int at = have;
      while (at > 0 && real_at(out, (size_t)best[at - 1]) < v) at--;
      if (at >= k) continue;
      if (have < k) have++;
      memmove(best + at + 1, best + at, (size_t)(have - 1 - at) * sizeof *best);
      best[at] = (int)i;
    }
    for (int r = 0; r < have; r++) printf("rkwl top %d %d %.6f\n", r + 1, best[r], real_at(out, (size_t)best[r]));
    free(best);
  } else {
    // YOLOv5 export: [1, rows, 5 + classes] = cx, cy, w, h, objectness, class scores. Rows whose
    // objectness and best class score pass --conf are printed as they are (no NMS: the host
    // decodes, so that one definition of the decode serves every backend).
    int nd = TfLiteTensorNumDims(out);
    int cols = nd >= 2 ? TfLiteTensorDim(out, nd - 1) : 0;
    if (cols < 6 || nout % (size_t)cols)
      return fail(EXIT_INPUT, "output", "detect expects [1, rows, 5 + classes], got %d columns", cols);
    size_t rows = nout / (size_t)cols;
    int printed = 0, over = 0;
    for (size_t r = 0; r < rows; r++) {
      size_t b = r * (size_t)cols;
      double obj = real_at(out, b + 4);
      if (obj < o.conf) continue;
      int cls = 0;
      double cs = -1;
      for (int c = 5; c < cols; c++) {
        double v = real_at(out, b + (size_t)c);
        if (v > cs) cs = v, cls = c - 5;
      }
      if (obj * cs < o.conf) continue;
      if (printed == o.max_boxes) {
        over++;
        continue;
      }
      printed++;
      printf("rkwl box %zu %.6f %.6f %.6f %.6f %.6f %d %.6f\n", r, real_at(out, b), real_at(out, b + 1),
             real_at(out, b + 2), real_at(out, b + 3), obj, cls, cs);
    }
    printf("rkwl boxes %d rows=%zu conf=%.4f dropped=%d\n", printed, rows, o.conf, over);
  }
  for (int i = 0; i < o.nmodels; i++) {
    TfLiteInterpreterDelete(interps[i]);
    TfLiteModelDelete(models[i]);
    if (delegates[i]) destroy(delegates[i]);
  }
  printf("rkwl end 0\n");
  return EXIT_DONE;
}
