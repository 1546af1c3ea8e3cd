"""The Python binding against the real library and the bundled stories260K model: version,
quantize (options, progress, errors), evaluate (the CLI's figures), convert (a GPTQ checkpoint
out and back: the same weights), Model (config, metadata, tensors as numpy arrays)."""
import json
import os
import subprocess
import tempfile
import unittest

import lowbit

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "models", "stories260K", "stories260K.bin")
TESTBED = os.path.join(ROOT, "models", "testbed", "testbed-f16.gguf")
TEXT = os.path.join(ROOT, "data", "tinystories-valid-70.txt")
CLI = os.environ.get("LOWBIT_CLI", os.path.join(ROOT, "build", "lowbit"))


class Binding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.q8 = os.path.join(cls.tmp.name, "q8.gguf")
        cls.summary = lowbit.quantize(MODEL, cls.q8, type="q8_0")
        cls.text = os.path.join(cls.tmp.name, "text.txt")
        with open(TEXT, "rb") as f, open(cls.text, "wb") as g:
            g.write(f.read(30000))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_version(self):
        self.assertRegex(lowbit.__version__, r"^\d+\.\d+\.\d+$")
        if os.path.exists(CLI):
            out = subprocess.run([CLI, "--version"], capture_output=True, text=True).stdout.split()
            self.assertEqual(out[1], lowbit.__version__)

    def test_quantize_summary(self):
        s = self.summary
        self.assertGreater(s["bytes_in"], s["bytes_out"])
        self.assertTrue(8.0 < s["bpw"] < 11.0)
        self.assertEqual(s["tensors"], 47)

    def test_progress_and_gptq(self):
        blocks = []
        out = os.path.join(self.tmp.name, "g.gguf")
        s = lowbit.quantize(MODEL, out, type="q4_0", method="gptq", calib=self.text, calib_samples=8,
                            calib_ctx=64, progress=blocks.append)
        self.assertEqual([b["block"] for b in blocks], list(range(1, blocks[-1]["blocks"] + 1)))
        self.assertEqual(blocks[-1]["name"], "output")
        self.assertTrue(0 < s["err_method"] < s["err_rtn"])

    def test_progress_exception_is_raised(self):
        def stop(_block):
            raise KeyboardInterrupt("from the callback")
        with self.assertRaises(KeyboardInterrupt):
            lowbit.quantize(MODEL, os.path.join(self.tmp.name, "x.gguf"), type="q8_0", progress=stop)

    def test_errors(self):
        with self.assertRaisesRegex(lowbit.LowbitError, "unknown type 'q9_9'"):
            lowbit.quantize(MODEL, os.path.join(self.tmp.name, "e.gguf"), type="q9_9")
        with self.assertRaisesRegex(lowbit.LowbitError, "unknown key 'colour'"):
            lowbit.quantize(MODEL, os.path.join(self.tmp.name, "e.gguf"), type="q8_0", colour="red")
        with self.assertRaisesRegex(lowbit.LowbitError, "'calib_samples' must be an integer"):
            lowbit.quantize(MODEL, os.path.join(self.tmp.name, "e.gguf"), type="q8_0", calib_samples="many")
        with self.assertRaises(lowbit.LowbitError) as e:
            lowbit.evaluate(os.path.join(self.tmp.name, "absent.gguf"), text=self.text)
        self.assertIn("absent.gguf", str(e.exception))
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "e.gguf")))

    def test_convert_gptq_round_trip(self):
        q = os.path.join(self.tmp.name, "tb-q4_0.gguf")
        lowbit.quantize(TESTBED, q, type="q4_0", output_tensor_type="f16", token_embedding_type="f16")
        d = os.path.join(self.tmp.name, "tb-gptq")
        r = lowbit.convert(q, d, to="hf-gptq")
        self.assertEqual((r["to"], r["type"]), ("hf-gptq", "gptq"))
        with open(os.path.join(d, "config.json")) as f:
            self.assertEqual(json.load(f)["quantization_config"]["group_size"], 32)
        back = os.path.join(self.tmp.name, "tb-back.gguf")
        r = lowbit.convert(d, back)
        self.assertEqual(r["type"], "keep")
        self.assertEqual((r["import"]["method"], r["import"]["bits"], r["import"]["layers"], r["import"]["exact"]),
                         ("gptq", 4, 42, 42))
        with lowbit.Model(q) as a, lowbit.Model(back) as b, lowbit.Model(d) as c:
            for name in ("blk.0.attn_q.weight", "blk.5.ffn_down.weight"):
                self.assertTrue((a.tensor(name) == b.tensor(name)).all())
                self.assertTrue((a.tensor(name) == c.tensor(name)).all())
        with self.assertRaises(lowbit.LowbitError) as e:
            lowbit.convert(q, os.path.join(self.tmp.name, "x"), to="onnx")
        self.assertIn("gguf, hf or hf-gptq", str(e.exception))

    def test_evaluate_matches_cli(self):
        r = lowbit.evaluate(self.q8, text=self.text, ctx=128, ref=MODEL)
        self.assertTrue(1 < r["ppl"] < 20)
        self.assertTrue(0 < r["kld_mean"] < 0.01 and 0.9 < r["top1"] <= 1)
        self.assertNotIn("kld_mean", lowbit.evaluate(self.q8, text=self.text, ctx=128, chunks=2))
        if os.path.exists(CLI):
            out = subprocess.run([CLI, "eval", self.q8, "--text", self.text, "--ctx", "128", "--ref", MODEL,
                                  "--json"], capture_output=True, text=True, check=True).stdout
            cli = json.loads(out)
            self.assertAlmostEqual(cli["ppl"], r["ppl"], places=4)
            self.assertAlmostEqual(cli["kld_mean"], r["kld_mean"], places=6)

    def test_model(self):
        with lowbit.Model(self.q8) as m, lowbit.Model(MODEL) as f:
            self.assertEqual(m.config["n_layers"], 5)
            self.assertEqual(m.config["n_embd"], 64)
            self.assertEqual(m.config["n_vocab"], 512)
            self.assertTrue(m.metadata["general.quantized_by"].startswith("lowbit"))
            self.assertEqual(m.metadata["general.architecture"], "llama")
            self.assertEqual(m.metadata["tokenizer.ggml.tokens"], {"array": "str", "n": 512})
            names = [t["name"] for t in m.tensors]
            self.assertIn("blk.0.attn_q.weight", names)
            q = m.tensor("blk.0.attn_q.weight")
            w = f.tensor("blk.0.attn_q.weight")
            self.assertEqual(q.shape, (64, 64))
            self.assertEqual(q.dtype.name, "float32")
            err = float(((q - w) ** 2).sum() / (w ** 2).sum())
            self.assertTrue(0 < err < 1e-3, err)
            norm = m.tensor("blk.0.attn_norm.weight")
            self.assertEqual(norm.shape, (64,))
            self.assertTrue((norm == f.tensor("blk.0.attn_norm.weight")).all())  # f32: exact
            with self.assertRaisesRegex(lowbit.LowbitError, "no tensor named 'nope'"):
                m.tensor("nope")


if __name__ == "__main__":
    unittest.main()
