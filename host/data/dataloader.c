/* dataloader.c — batches of preprocessed training items, decoded by worker
 * threads into a bounded, ordered queue (see taming/dataloader.h).
 *
 * The queue holds `prefetch` slots. Batches are numbered linearly
 * (k = epoch * steps_per_epoch + step); a worker claims the next unclaimed k
 * only while k < taken + prefetch, decodes it without holding the lock and
 * parks it in slot k % prefetch; next() waits for the slot of the batch it owes.
 * Everything a batch contains is derived from k and the seed, never from which
 * thread decoded it or when. */
#include "config.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../io/io_internal.h"
#include "taming/dataloader.h"
#include "taming/io.h"
#include "taming/ops/random.h"

typedef struct slot {
  int64_t k;
  bool ready;
  tt_status status;
  char *msg;          /* the worker's error message (thread-local there) */
  tt_batch b;
} slot;

struct tt_loader {
  tt_dataset_spec spec;
  char **paths, **cond_paths;
  tt_loader_opts o;
  int64_t spe;        /* steps per epoch */
  int64_t G;          /* global batch: batch * world */
  pthread_mutex_t mu;
  pthread_cond_t ready_cv, space_cv;
  slot *slots;
  int64_t next_claim, next_take;
  bool stop, running;
  pthread_t *threads;
  int nthreads;
  int64_t perm_epoch;  /* epoch whose permutation `perm` holds (-1: none) */
  int64_t *perm;
};

/* ---- keys and permutations ---- */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static uint64_t key3(uint64_t seed, uint64_t a, uint64_t b) {
  return mix64(mix64(mix64(seed ^ 0x6c6f61646572ull) + a) + b);
}

/* Fisher-Yates from (seed, epoch); identity without shuffling. */
static void fill_perm(const tt_loader *l, int64_t epoch, int64_t *p) {
  int64_t n = l->spec.n;
  for (int64_t i = 0; i < n; i++) p[i] = i;
  if (!l->o.shuffle) return;
  tt_rng r = tt_rng_make(key3(l->o.seed, 0x7065726dull, (uint64_t)epoch));
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(tt_rng_uniform(&r) * (double)(i + 1));
    int64_t t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

tt_tensor *tt_loader_order(const tt_loader *l, int64_t epoch) {
  tt_tensor *t = tt_tensor_new(TT_I64, 1, &l->spec.n, TT_CPU);
  if (t) fill_perm(l, epoch, tt_tensor_data(t));
  return t;
}

/* ---- one item ---- */

static const char *item_name(const tt_loader *l, int64_t idx, char *buf, size_t n) {
  if (l->paths) return l->paths[idx];
  snprintf(buf, n, "item %lld", (long long)idx);
  return buf;
}

/* u8 [H, W, C] with C in 1..4 -> u8 [H, W, want] (want 1 or 3), as PIL's convert. */
static tt_tensor *to_channels(tt_tensor *img, int want, const char *what) {
  int64_t H = img->shape[0], W = img->shape[1], C = img->ndim == 3 ? img->shape[2] : 1;
  if (C == want) return tt_tensor_ref(img);
  if (C < 1 || C > 4) {
    tt_error(TT_ERR_INVALID, "%s: %lld channels (expected 1 to 4)", what, (long long)C);
    return NULL;
  }
  tt_tensor *out = tt_tensor_new(TT_U8, TT_DIMS(H, W, want), TT_CPU);
  if (!out) return NULL;
  const unsigned char *s = tt_tensor_data(img);
  unsigned char *d = tt_tensor_data(out);
  for (int64_t i = 0; i < H * W; i++) {
    const unsigned char *px = s + i * C;
    unsigned char g;
    if (C <= 2) g = px[0];   /* gray (+ alpha, dropped) */
    else g = (unsigned char)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
    if (want == 1) d[i] = g;
    else if (C <= 2) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = g;
    else { d[3 * i] = px[0]; d[3 * i + 1] = px[1]; d[3 * i + 2] = px[2]; }   /* RGBA: alpha dropped */
  }
  return out;
}

/* Item `idx` of the in-memory array, zero-padded: u8 [H + 2p, W + 2p, C]. */
static tt_tensor *array_item(const tt_loader *l, int64_t idx) {
  const tt_tensor *a = l->spec.array;
  int64_t H = a->shape[1], W = a->shape[2], C = a->ndim == 4 ? a->shape[3] : 1, p = l->spec.pad;
  tt_tensor *out = tt_zeros(TT_U8, TT_DIMS(H + 2 * p, W + 2 * p, C), TT_CPU);
  if (!out) return NULL;
  const unsigned char *s = (const unsigned char *)tt_tensor_data(a) + idx * H * W * C;
  unsigned char *d = tt_tensor_data(out);
  for (int64_t y = 0; y < H; y++) memcpy(d + ((y + p) * (W + 2 * p) + p) * C, s + y * W * C, (size_t)(W * C));
  return out;
}

/* Replaces *t by f(*t) (f returns a new tensor or NULL). */
#define APPLY(t, expr)                 \
  do {                                 \
    tt_tensor *n_ = (expr);            \
    tt_tensor_unref(t);                \
    (t) = n_;                          \
    if (!(t)) goto fail;               \
  } while (0)

/* Decodes and preprocesses one item: image u8 [h, w, C]; cond u8 labels [h, w]
 * or f32 depth [h, w] (or NULL). */
static tt_status load_item(const tt_loader *l, int64_t idx, int64_t epoch, tt_tensor **img_out, tt_tensor **cond_out) {
  const tt_dataset_spec *sp = &l->spec;
  char nb[64];
  const char *name = item_name(l, idx, nb, sizeof nb);
  tt_tensor *img = NULL, *cond = NULL;
  *img_out = *cond_out = NULL;
  if (l->paths) {
    if (tt_image_load_u8(l->paths[idx], &img) != TT_OK) return tt_last_status();
  } else {
    img = array_item(l, idx);
    if (!img) return tt_last_status();
  }
  APPLY(img, to_channels(img, sp->channels, name));
  if (sp->cond == TT_COND_SEGMENTATION) {
    if (tt_labels_load(l->cond_paths[idx], &cond) != TT_OK) goto fail;
  } else if (sp->cond == TT_COND_DEPTH) {
    if (tt_depth_load(l->cond_paths[idx], &cond) != TT_OK) goto fail;
  }
  if (cond && (cond->shape[0] != img->shape[0] || cond->shape[1] != img->shape[1])) {
    tt_error(TT_ERR_INVALID, "%s is %lldx%lld but its condition %s is %lldx%lld", name, (long long)img->shape[0],
             (long long)img->shape[1], l->cond_paths[idx], (long long)cond->shape[0], (long long)cond->shape[1]);
    goto fail;
  }
  tt_rng r = tt_rng_make(key3(l->o.seed, (uint64_t)epoch, (uint64_t)idx));
  if (sp->size > 0) {
    /* resize and crop in one step: only the kept window is resized */
    int64_t s = sp->size;
    double u = -1, v = -1;
    if (sp->random_crop) u = tt_rng_uniform(&r), v = tt_rng_uniform(&r);
    tt_interp ci = sp->cond == TT_COND_SEGMENTATION ? TT_INTER_NEAREST : TT_INTER_LINEAR;
    APPLY(img, tt_smallest_max_size_crop(img, s, s, s, u, v, sp->interp));
    if (cond) APPLY(cond, tt_smallest_max_size_crop(cond, s, s, s, u, v, ci));
  }
  if (sp->hflip && tt_rng_uniform(&r) < 0.5) {
    APPLY(img, tt_hflip(img));
    if (cond) APPLY(cond, tt_hflip(cond));
  }
  *img_out = img;
  *cond_out = cond;
  return TT_OK;
fail:
  tt_tensor_unref(img);
  tt_tensor_unref(cond);
  return tt_error_prefix(tt_last_status(), "%s: ", name);
}
#undef APPLY

/* ---- one batch ---- */

static tt_status build_batch(tt_loader *l, int64_t k, const int64_t *items, int B, tt_batch *out) {
  const tt_dataset_spec *sp = &l->spec;
  memset(out, 0, sizeof *out);
  out->epoch = k / l->spe;
  out->step = k % l->spe;
  int64_t nb = B;
  out->index = tt_tensor_new(TT_I64, 1, &nb, TT_CPU);
  if (!out->index) return tt_last_status();
  memcpy(tt_tensor_data(out->index), items, sizeof(int64_t) * (size_t)B);
  if (sp->labels) {
    out->label = tt_tensor_new(TT_I64, 1, &nb, TT_CPU);
    if (!out->label) goto fail;
    const int64_t *lab = tt_tensor_data(sp->labels);
    int64_t *dst = tt_tensor_data(out->label);
    for (int i = 0; i < B; i++) dst[i] = lab[items[i]];
  }
  int64_t H = 0, W = 0, C = sp->channels;
  for (int i = 0; i < B; i++) {
    tt_tensor *img, *cond;
    char nbuf[64];
    if (load_item(l, items[i], out->epoch, &img, &cond) != TT_OK) goto fail;
    if (i == 0) {
      H = img->shape[0];
      W = img->shape[1];
      out->image = tt_tensor_new(TT_F32, TT_DIMS(B, C, H, W), TT_CPU);
      if (cond) {
        int64_t K = sp->cond == TT_COND_SEGMENTATION ? sp->n_labels : 1;
        out->cond = tt_tensor_new(TT_F32, TT_DIMS(B, K, H, W), TT_CPU);
      }
      if (!out->image || (cond && !out->cond)) {
        tt_tensor_unref(img);
        tt_tensor_unref(cond);
        goto fail;
      }
    } else if (img->shape[0] != H || img->shape[1] != W) {
      tt_error(TT_ERR_INVALID, "%s is %lldx%lld, the batch's first item is %lldx%lld (set a size to resize and crop)",
               item_name(l, items[i], nbuf, sizeof nbuf), (long long)img->shape[0], (long long)img->shape[1],
               (long long)H, (long long)W);
      tt_tensor_unref(img);
      tt_tensor_unref(cond);
      goto fail;
    }
    // u8 [H, W, C] -> f32 [C, H, W] at batch row i
    tt_u8_hwc_to_chw(tt_tensor_data(img), H * W, C, (float *)tt_tensor_data(out->image) + (int64_t)i * C * H * W);
    tt_tensor_unref(img);
    if (cond) {
      tt_tensor *plane = NULL;
      if (sp->cond == TT_COND_SEGMENTATION)
        plane = tt_labels_onehot(cond, sp->n_labels, sp->shift, l->cond_paths[items[i]]);   // [K, H, W]
      else
        plane = tt_tensor_ref(cond);   // f32 [H, W]
      tt_tensor_unref(cond);
      if (!plane) goto fail;
      int64_t K = out->cond->shape[1];
      memcpy((float *)tt_tensor_data(out->cond) + (int64_t)i * K * H * W, tt_tensor_data(plane),
             sizeof(float) * (size_t)(K * H * W));
      tt_tensor_unref(plane);
    }
  }
  return TT_OK;
fail:
  {
    tt_status s = tt_last_status();
    tt_batch_clear(out);
    return s;
  }
}

/* The items of batch k for this rank (under the lock when workers run). */
static int batch_items(tt_loader *l, int64_t k, int64_t *items) {
  int64_t epoch = k / l->spe, step = k % l->spe;
  if (l->perm_epoch != epoch) {
    fill_perm(l, epoch, l->perm);
    l->perm_epoch = epoch;
  }
  int64_t base = step * l->G, n = l->spec.n;
  int B = 0;
  for (int i = 0; i < l->o.batch; i++) {
    int64_t pos = base + l->o.rank + (int64_t)i * l->o.world;
    if (pos >= n) break;
    items[B++] = l->perm[pos];
  }
  return B;
}

void tt_batch_clear(tt_batch *b) {
  if (!b) return;
  tt_tensor_unref(b->image);
  tt_tensor_unref(b->cond);
  tt_tensor_unref(b->label);
  tt_tensor_unref(b->index);
  memset(b, 0, sizeof *b);
}

/* ---- workers ---- */

static void *worker_main(void *arg) {
  tt_loader *l = arg;
#ifdef _OPENMP
  omp_set_num_threads(1);   /* per-thread setting: the training thread keeps its team */
#endif
  int64_t *items = malloc(sizeof(int64_t) * (size_t)l->o.batch);
  pthread_mutex_lock(&l->mu);
  while (!l->stop) {
    if (!items || l->next_claim >= l->next_take + l->o.prefetch) {
      if (!items) break;
      pthread_cond_wait(&l->space_cv, &l->mu);
      continue;
    }
    int64_t k = l->next_claim++;
    int B = batch_items(l, k, items);
    pthread_mutex_unlock(&l->mu);
    tt_batch b;
    tt_status s = build_batch(l, k, items, B, &b);
    char *msg = s == TT_OK ? NULL : strdup(tt_error_message());
    pthread_mutex_lock(&l->mu);
    slot *sl = &l->slots[k % l->o.prefetch];
    sl->k = k;
    sl->status = s;
    sl->msg = msg;
    sl->b = b;
    sl->ready = true;
    pthread_cond_broadcast(&l->ready_cv);
  }
  pthread_mutex_unlock(&l->mu);
  free(items);
  return NULL;
}

static void stop_workers(tt_loader *l) {
  if (!l->running) return;
  pthread_mutex_lock(&l->mu);
  l->stop = true;
  pthread_cond_broadcast(&l->space_cv);
  pthread_cond_broadcast(&l->ready_cv);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
  l->nthreads = 0;
  l->running = false;
  l->stop = false;
  for (int i = 0; i < l->o.prefetch; i++) {
    slot *sl = &l->slots[i];
    if (sl->ready) tt_batch_clear(&sl->b);
    free(sl->msg);
    memset(sl, 0, sizeof *sl);
  }
  l->next_claim = l->next_take;
}

static tt_status start_workers(tt_loader *l) {
  if (l->running) return TT_OK;
  l->running = true;
  l->stop = false;
  for (int i = 0; i < l->o.workers; i++) {
    int e = pthread_create(&l->threads[i], NULL, worker_main, l);
    if (e != 0) {
      stop_workers(l);
      return tt_error(TT_ERR_IO, "data loader: cannot start a decoding thread: %s", strerror(e));
    }
    l->nthreads = i + 1;
  }
  return TT_OK;
}

/* ---- public ---- */

static char **copy_paths(const char *const *p, int64_t n) {
  char **c = calloc((size_t)n, sizeof *c);
  if (!c) return NULL;
  for (int64_t i = 0; i < n; i++) {
    if (!p[i] || !(c[i] = strdup(p[i]))) {
      for (int64_t k = 0; k < i; k++) free(c[k]);
      free(c);
      return NULL;
    }
  }
  return c;
}

static tt_status check_spec(const tt_dataset_spec *sp, const tt_loader_opts *o) {
  char sh[128];
  if (sp->n < 1) return tt_error(TT_ERR_INVALID, "data loader: the dataset is empty");
  if (!sp->paths && !sp->array) return tt_error(TT_ERR_INVALID, "data loader: give image paths or an image array");
  if (sp->array) {
    const tt_tensor *a = sp->array;
    if (a->dtype != TT_U8 || (a->ndim != 3 && a->ndim != 4) || a->device != TT_CPU || !tt_tensor_is_contiguous(a))
      return tt_error(TT_ERR_INVALID, "data loader: the image array must be contiguous CPU u8 [N, H, W] or [N, H, W, C], found %s %s",
                      tt_dtype_name(a->dtype), tt_tensor_shape_str(a, sh, sizeof sh));
    if (a->shape[0] != sp->n)
      return tt_error(TT_ERR_INVALID, "data loader: the array holds %lld images, the dataset %lld items",
                      (long long)a->shape[0], (long long)sp->n);
  }
  if (sp->labels) {
    const tt_tensor *t = sp->labels;
    if (t->dtype != TT_I64 || t->ndim != 1 || t->shape[0] != sp->n || t->device != TT_CPU || !tt_tensor_is_contiguous(t))
      return tt_error(TT_ERR_INVALID, "data loader: labels must be contiguous CPU i64 [%lld], found %s %s",
                      (long long)sp->n, tt_dtype_name(t->dtype), tt_tensor_shape_str(t, sh, sizeof sh));
  }
  if (sp->channels != 1 && sp->channels != 3)
    return tt_error(TT_ERR_INVALID, "data loader: channels must be 1 or 3, found %d", sp->channels);
  if (sp->size < 0 || sp->pad < 0) return tt_error(TT_ERR_INVALID, "data loader: size and pad must be >= 0");
  if (sp->cond != TT_COND_NONE && (!sp->paths || !sp->cond_paths))
    return tt_error(TT_ERR_INVALID, "data loader: a segmentation or depth condition needs image and condition paths");
  if (sp->cond == TT_COND_SEGMENTATION && (sp->n_labels < 1 || sp->n_labels > 256))
    return tt_error(TT_ERR_INVALID, "data loader: segmentation needs n_labels in 1..256, found %d", sp->n_labels);
  if (o->batch < 1) return tt_error(TT_ERR_INVALID, "data loader: batch must be >= 1, found %d", o->batch);
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    return tt_error(TT_ERR_INVALID, "data loader: rank %d of world %d is out of range", o->rank, o->world);
  if (o->workers < 0 || o->workers > 64) return tt_error(TT_ERR_INVALID, "data loader: workers must be in 0..64");
  if (o->prefetch < 1 || o->prefetch > 1024) return tt_error(TT_ERR_INVALID, "data loader: prefetch must be in 1..1024");
  return TT_OK;
}

tt_status tt_loader_open(const tt_dataset_spec *spec, const tt_loader_opts *opts, tt_loader **out) {
  *out = NULL;
  TT_TRY(check_spec(spec, opts));
  tt_loader *l = calloc(1, sizeof *l);
  if (!l) return tt_error(TT_ERR_NOMEM, "out of memory");
  l->spec = *spec;
  l->o = *opts;
  /* every rank must take the same number of steps, or the gradient all-reduce would hang */
  if (l->o.world > 1) l->o.drop_last = true;
  l->G = (int64_t)l->o.batch * l->o.world;
  l->spe = l->o.drop_last ? spec->n / l->G : (spec->n + l->G - 1) / l->G;
  if (l->spe < 1) {
    free(l);
    return tt_error(TT_ERR_INVALID, "data loader: %lld items do not fill one batch of %lld (batch %d x %d processes)",
                    (long long)spec->n, (long long)(int64_t)opts->batch * opts->world, opts->batch, opts->world);
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->ready_cv, NULL);
  pthread_cond_init(&l->space_cv, NULL);
  l->perm_epoch = -1;
  l->perm = malloc(sizeof(int64_t) * (size_t)spec->n);
  l->slots = calloc((size_t)l->o.prefetch, sizeof *l->slots);
  l->threads = calloc((size_t)(l->o.workers ? l->o.workers : 1), sizeof *l->threads);
  bool ok = l->perm && l->slots && l->threads;
  if (ok && spec->paths) ok = (l->paths = copy_paths(spec->paths, spec->n)) != NULL;
  if (ok && spec->cond_paths && spec->cond != TT_COND_NONE)
    ok = (l->cond_paths = copy_paths(spec->cond_paths, spec->n)) != NULL;
  if (!ok) {
    tt_loader_close(l);
    return tt_error(TT_ERR_NOMEM, "data loader: out of memory");
  }
  l->spec.paths = (const char *const *)l->paths;
  l->spec.cond_paths = (const char *const *)l->cond_paths;
  l->spec.array = tt_tensor_ref(spec->array);
  l->spec.labels = tt_tensor_ref(spec->labels);
  *out = l;
  return TT_OK;
}

void tt_loader_close(tt_loader *l) {
  if (!l) return;
  stop_workers(l);
  if (l->slots) {
    for (int i = 0; i < l->o.prefetch; i++) {
      if (l->slots[i].ready) tt_batch_clear(&l->slots[i].b);
      free(l->slots[i].msg);
    }
  }
  for (int64_t i = 0; l->paths && i < l->spec.n; i++) free(l->paths[i]);
  for (int64_t i = 0; l->cond_paths && i < l->spec.n; i++) free(l->cond_paths[i]);
  free(l->paths);
  free(l->cond_paths);
  tt_tensor_unref(l->spec.array);
  tt_tensor_unref(l->spec.labels);
  free(l->perm);
  free(l->slots);
  free(l->threads);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->ready_cv);
  pthread_cond_destroy(&l->space_cv);
  free(l);
}

int64_t tt_loader_steps_per_epoch(const tt_loader *l) { return l->spe; }

tt_status tt_loader_seek(tt_loader *l, int64_t epoch, int64_t step) {
  if (epoch < 0 || step < 0 || step >= l->spe)
    return tt_error(TT_ERR_INVALID, "data loader: cannot seek to step %lld of epoch %lld (%lld steps per epoch)",
                    (long long)step, (long long)epoch, (long long)l->spe);
  stop_workers(l);
  l->next_take = l->next_claim = epoch * l->spe + step;
  return TT_OK;
}

tt_status tt_loader_next(tt_loader *l, tt_batch *out) {
  memset(out, 0, sizeof *out);
  if (l->o.workers == 0) {
    int64_t *items = malloc(sizeof(int64_t) * (size_t)l->o.batch);
    if (!items) return tt_error(TT_ERR_NOMEM, "out of memory");
    int64_t k = l->next_take++;
    int B = batch_items(l, k, items);
    tt_status s = build_batch(l, k, items, B, out);
    free(items);
    return s;
  }
  TT_TRY(start_workers(l));
  pthread_mutex_lock(&l->mu);
  slot *sl = &l->slots[l->next_take % l->o.prefetch];
  while (!(sl->ready && sl->k == l->next_take)) pthread_cond_wait(&l->ready_cv, &l->mu);
  tt_status s = sl->status;
  if (s == TT_OK) *out = sl->b;
  else tt_error(s, "%s", sl->msg ? sl->msg : "data loader: a decoding thread failed");
  free(sl->msg);
  memset(sl, 0, sizeof *sl);
  l->next_take++;
  pthread_cond_broadcast(&l->space_cv);
  pthread_mutex_unlock(&l->mu);
  return s;
}
