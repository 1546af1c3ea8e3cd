"""lowbit from Python: quantize and evaluate LLMs on a CPU through liblowbit.so (ctypes).

    import lowbit
    r = lowbit.quantize("model.gguf", "model-q4_k_m.gguf", type="q4_k_m", method="gptq",
                        calib="text.txt")
    print(lowbit.evaluate("model-q4_k_m.gguf", text="eval.txt", ctx=256, ref="model.gguf"))

Nothing to compile: the package loads the shared library from $LOWBIT_LIBRARY, else the
build tree this package sits in (../build), else the system's library path (an installed
prefix). Every call is the library's flat interface (include/lowbit/api.h): options go in as
JSON, results come back as dicts; a failure raises LowbitError with the library's one line.
"""
import ctypes
import ctypes.util
import json
import os

__all__ = ["LowbitError", "Model", "quantize", "evaluate", "library_path", "__version__"]


class LowbitError(RuntimeError):
    """A lowbit call failed: the message is the library's, the status its code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 256)]


def _candidates():
    env = os.environ.get("LOWBIT_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for build in ("build", "build-asan"):
        yield os.path.join(here, "..", "..", build, "liblowbit.so.0")
    found = ctypes.util.find_library("lowbit")
    if found:
        yield found
    yield "liblowbit.so.0"


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("liblowbit.so.0 not found (set LOWBIT_LIBRARY); tried: " + ", ".join(tried))


_lib, library_path = _load()
_P = ctypes.c_void_p
_S = ctypes.c_char_p
_PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_lib.lb_version.restype = _S
_lib.lb_api_free.argtypes = [_P]
_lib.lb_api_quantize.argtypes = [_S, _S, _S, _PROGRESS, _P, ctypes.POINTER(_P), ctypes.POINTER(_Error)]
_lib.lb_api_evaluate.argtypes = [_S, _S, _S, ctypes.POINTER(_P), ctypes.POINTER(_Error)]
_lib.lb_api_convert.argtypes = [_S, _S, _S, ctypes.POINTER(_P), ctypes.POINTER(_Error)]
_lib.lb_api_model_info.argtypes = [_P, ctypes.POINTER(_P), ctypes.POINTER(_Error)]
_lib.lb_api_tensor_shape.argtypes = [_P, _S, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64),
                                     ctypes.POINTER(_Error)]
_lib.lb_api_tensor_read.argtypes = [_P, _S, _P, ctypes.c_int64, ctypes.POINTER(_Error)]
_lib.lb_model_load.argtypes = [ctypes.POINTER(_P), _S, _S, ctypes.POINTER(_Error)]
_lib.lb_model_free.argtypes = [_P]
for _f in ("lb_api_quantize", "lb_api_evaluate", "lb_api_convert", "lb_api_model_info", "lb_api_tensor_shape",
           "lb_api_tensor_read", "lb_model_load"):
    getattr(_lib, _f).restype = ctypes.c_int

__version__ = _lib.lb_version().decode()


def _enc(s):
    return None if s is None else os.fsencode(s)


def _check(status, err):
    if status != 0:
        raise LowbitError(status, err.msg.decode(errors="replace"))


def _take_json(ptr):
    try:
        return json.loads(ctypes.string_at(ptr.value).decode())
    finally:
        _lib.lb_api_free(ptr)


def quantize(src, dst, type, method="rtn", calib=None, progress=None, **options):
    """Quantize the model at src into the GGUF dst; returns the run's summary as a dict.

    type: a GGUF type or llama.cpp mix ("q4_k_m"); method: "rtn", "imatrix", "gptq", "awq",
    "awq+gptq", ...; calib: the calibration text's path. Other options as the library names
    them (include/lowbit/api.h): calib_samples, calib_ctx, seed, imatrix, range, act, damp,
    act_order, pure, allow_requantize, tokenizer, tensor_types, output_tensor_type,
    token_embedding_type, threads, calib_matmul. progress(dict) is called after each block."""
    opts = dict(options, type=type, method=method)
    if calib is not None:
        opts["calib"] = os.fspath(calib)
    failure = []

    def on_block(_user, text):
        if failure:
            return
        try:
            progress(json.loads(text.decode()))
        except BaseException as e:  # never unwind through C: re-raised after the call
            failure.append(e)

    cb = _PROGRESS(on_block) if progress else _PROGRESS()
    out, err = _P(), _Error()
    _check(_lib.lb_api_quantize(_enc(src), _enc(dst), json.dumps(opts).encode(), cb, None,
                                ctypes.byref(out), ctypes.byref(err)), err)
    result = _take_json(out)
    if failure:
        raise failure[0]
    return result


def evaluate(model, text, ctx=128, ref=None, chunks=None, **options):
    """Perplexity of model on the text file (chunks of ctx tokens, as llama-perplexity); with
    ref (a reference model's path), its KL divergence too. Returns a dict: ppl, ppl_stderr,
    tokens_scored, chunks, ctx, seconds, and with ref kld_mean, kld_median, kld_p99, kld_max,
    top1, ppl_ref."""
    opts = dict(options, ctx=ctx)
    if ref is not None:
        opts["ref"] = os.fspath(ref)
    if chunks is not None:
        opts["chunks"] = chunks
    out, err = _P(), _Error()
    _check(_lib.lb_api_evaluate(_enc(model), _enc(text), json.dumps(opts).encode(), ctypes.byref(out),
                                ctypes.byref(err)), err)
    return _take_json(out)


def convert(src, dst, to="gguf", type=None, tokenizer=None):
    """Convert the model at src (a GGUF, a Hugging Face directory, a GPTQ or AWQ checkpoint, a
    llama2.c checkpoint) to dst: to="gguf", "hf" or "hf-gptq" (a GPTQ checkpoint of a model
    whose matrices are q4_0, q8_0, int4_gN or int8_gN). type: "f32", "f16", "bf16" or "keep"
    (default: keep for a GPTQ/AWQ import, else f32). Returns a dict: to, type, params, seconds,
    and for a GPTQ/AWQ source "import": method, bits, group_size, sym, act_order, layers, exact,
    max_rel_err, worst."""
    opts = {"to": to}
    if type is not None:
        opts["type"] = type
    if tokenizer is not None:
        opts["tokenizer"] = os.fspath(tokenizer)
    out, err = _P(), _Error()
    _check(_lib.lb_api_convert(_enc(src), _enc(dst), json.dumps(opts).encode(), ctypes.byref(out),
                               ctypes.byref(err)), err)
    return _take_json(out)


class Model:
    """A loaded model (GGUF, a Hugging Face directory, or llama2.c): its config, metadata and
    tensors. Use as a context manager, or call close()."""

    def __init__(self, path, tokenizer=None):
        self._m, err = _P(), _Error()
        _check(_lib.lb_model_load(ctypes.byref(self._m), _enc(path), _enc(tokenizer), ctypes.byref(err)), err)
        out = _P()
        status = _lib.lb_api_model_info(self._m, ctypes.byref(out), ctypes.byref(err))
        if status != 0:
            self.close()
            _check(status, err)
        info = _take_json(out)
        self.metadata = info.pop("metadata")
        self.tensors = info.pop("tensors")
        self.config = info

    def tensor(self, name):
        """The tensor's values dequantized to float32, as a numpy array in row-major order
        (shape: GGUF's ne reversed without its trailing 1s: (n_out, n_in) for a weight
        matrix, (n,) for a norm)."""
        import numpy as np
        if not self._m:
            raise LowbitError(0, "the model is closed")
        ne, count, err = (ctypes.c_int64 * 4)(), ctypes.c_int64(), _Error()
        _check(_lib.lb_api_tensor_shape(self._m, name.encode(), ne, ctypes.byref(count), ctypes.byref(err)), err)
        a = np.empty(count.value, dtype=np.float32)
        _check(_lib.lb_api_tensor_read(self._m, name.encode(), a.ctypes.data, count.value, ctypes.byref(err)), err)
        dims = [ne[d] for d in range(4)]
        while len(dims) > 1 and dims[-1] == 1:  # a norm (ne [64, 1]) is (64,)
            dims.pop()
        return a.reshape(tuple(reversed(dims)))

    def close(self):
        if getattr(self, "_m", None):
            _lib.lb_model_free(self._m)
            self._m = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
