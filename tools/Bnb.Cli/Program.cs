using System.CommandLine;
using Bnb.Cli;
using Bnb.Cli.Bench;

var libraries = new Option<string[]>("--library", "-l")
{
    Description = "Backend library file or directory to load first (repeatable); BNB_LIBRARY_PATH and the app directory are searched too",
    Arity = ArgumentArity.ZeroOrMore,
    AllowMultipleArgumentsPerToken = false,
};

var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
var info = new Command("info", "Show load attempts, CPU features (and OS support), backends with ABI and capabilities, devices");
info.Options.Add(json);
info.Options.Add(libraries);
info.SetAction(r => InfoCommand.Run(r.GetValue(json), r.GetValue(libraries) ?? []));

var demoSentences = new Option<int>("--sentences") { Description = "How many of the 256 built-in sentences to encode", DefaultValueFactory = _ => 256 };
var encoderBackends = new Option<string>("--backend", "-b") { Description = "Backend name(s) (comma-separated), best or all", DefaultValueFactory = _ => "all" };
var demoJson = new Option<bool>("--json") { Description = "Print a JSON array (one object per format and backend) instead of the table" };
var demo = new Command("demo", "all-MiniLM-L6-v2 end to end: fp32 on Bnb's kernels, then every linear layer int8 / NF4 / FP4 on every loaded backend; size, accuracy, speed");
demo.Options.Add(demoSentences);
demo.Options.Add(encoderBackends);
demo.Options.Add(demoJson);
demo.Options.Add(libraries);
demo.SetAction(r => DemoCommand.Run(r.GetValue(demoSentences), r.GetValue(encoderBackends)!, r.GetValue(demoJson), r.GetValue(libraries) ?? []));

var onnxOpt = new Option<string?>("--onnx") { Description = "BERT-family encoder exported to ONNX like all-MiniLM-L6-v2 (MatMul weights + bias Adds, named biases)" };
var vocabOpt = new Option<string?>("--vocab") { Description = "Its WordPiece vocab.txt" };
var sentencesOpt = new Option<string?>("--sentences") { Description = "Text file, one sentence per line (at least 2)" };
var formatsOpt = new Option<string>("--formats") { Description = "Comma-separated: fp32, int8 (threshold 6), int8-t0, nf4, nf4-dq, fp4", DefaultValueFactory = _ => "int8,int8-t0,nf4,nf4-dq,fp4" };
var evalBackends = new Option<string>("--backend", "-b") { Description = "Backend name(s) (comma-separated), best or all", DefaultValueFactory = _ => "best" };
var evalJson = new Option<bool>("--json") { Description = "Print a JSON array, one object per format (and backend): format, backend, weight_bytes, mean_cos, min_cos, pearson, nn_agreement, sentences_per_s" };
var evalEncoder = new Command("eval-encoder", "Quantize a BERT-family ONNX encoder's linear layers and compare its sentence embeddings with fp32");
foreach (Option o in new Option[] { onnxOpt, vocabOpt, sentencesOpt, formatsOpt, evalBackends, evalJson, libraries })
{
    evalEncoder.Options.Add(o);
}

evalEncoder.SetAction(r => EvalEncoderCommand.Run(r.GetValue(onnxOpt), r.GetValue(vocabOpt), r.GetValue(sentencesOpt), r.GetValue(formatsOpt)!, r.GetValue(evalBackends)!,
                                                  r.GetValue(evalJson), r.GetValue(libraries) ?? []));

var op = new Argument<string>("op")
{
    Description = "gemv | gemm | quantize | dequantize | int8-matmul | stream (read bandwidth) | suite (the benchmarks/README.md set)",
};
op.AcceptOnlyFromAmong(BenchCommand.Ops);
var backendOpt = new Option<string>("--backend", "-b") { Description = "Backend name(s) (comma-separated), best (the runtime's default) or all", DefaultValueFactory = _ => "best" };
var threadsOpt = new Option<string>("--threads", "-t") { Description = "Context thread count(s), e.g. 1 or 1,2 (default: all logical CPUs)", DefaultValueFactory = _ => Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture) };
var mOpt = new Option<long?>("--m") { Description = "Rows of A (gemv default 1, gemm/int8-matmul 512)" };
var kOpt = new Option<long?>("--k") { Description = "Inner dimension (gemv 8192, gemm/int8-matmul 4096; int8 quantize: columns)" };
var nOpt = new Option<long?>("--n") { Description = "Output features (gemv 16384, gemm/int8-matmul 4096); quantize/dequantize: element count (default 64M)" };
var quantOpt = new Option<string?>("--quant", "-q") { Description = "nf4 | fp4 (4-bit ops), q8 (8-bit blockwise) or int8 (LLM.int8 row-wise) for quantize/dequantize" };
quantOpt.AcceptOnlyFromAmong("nf4", "fp4", "int8", "q8");
var dtypeOpt = new Option<string>("--dtype", "-d") { Description = "Activation / float input-output dtype: f32 | f16 | bf16", DefaultValueFactory = _ => "bf16" };
dtypeOpt.AcceptOnlyFromAmong("f32", "f16", "bf16");
var blocksizeOpt = new Option<int?>("--blocksize") { Description = "Quantization blocksize (default 64 for 4-bit, 4096 for q8)" };
var packedOpt = new Option<bool>("--packed") { Description = "gemv/gemm: weights in the backend's weight_pack layout (BNB_WEIGHT_BACKEND)" };
var hotOpt = new Option<bool>("--hot") { Description = "gemv: do not rotate weight copies (weights may stay in cache)" };
var roundingOpt = new Option<string>("--rounding") { Description = "q8 quantize rounding: nearest | lut", DefaultValueFactory = _ => "nearest" };
roundingOpt.AcceptOnlyFromAmong("nearest", "lut");
var repeatOpt = new Option<int>("--repeat", "-r") { Description = "Timed runs per measurement (median reported)", DefaultValueFactory = _ => 10 };
var warmupOpt = new Option<int>("--warmup", "-w") { Description = "Untimed runs before timing", DefaultValueFactory = _ => 2 };
var maxSecondsOpt = new Option<double>("--max-seconds") { Description = "Stop repeating a measurement after this many timed seconds (at least 3 runs)", DefaultValueFactory = _ => 10 };
var benchJson = new Option<bool>("--json") { Description = "Print exactly one JSON array on stdout (one object per measurement), no progress" };
var markdownOpt = new Option<bool>("--markdown") { Description = "Print a Markdown table (suite: the README report with targets and peers)" };
var plotOpt = new Option<string?>("--plot") { Description = "Write a bar chart (GB/s or GFLOP/s per backend) to this PNG file" };
var jsonOutOpt = new Option<string?>("--json-out") { Description = "Also write the JSON array to this file" };
var bench = new Command("bench", "Time ops side by side on the loaded backends (median of repeated runs after warm-up)");
var kindOpt = new Option<string>("--kind") { Description = "optim: adam | adamw | lamb | ademamix | lion | sgd | lars | rmsprop | adagrad", DefaultValueFactory = _ => "adamw" };
var bitsOpt = new Option<int>("--bits") { Description = "optim: optimizer state bits, 32 or 8", DefaultValueFactory = _ => 32 };
var pagedOpt = new Option<bool>("--paged") { Description = "optim: paged state (budget: --budget-mib, default a quarter of the state)" };
var paramsOpt = new Option<long>("--params") { Description = "optim: total f32 parameters", DefaultValueFactory = _ => 100_000_000 };
var tensorParamsOpt = new Option<long>("--tensor-params") { Description = "optim: elements per parameter tensor", DefaultValueFactory = _ => 1L << 22 };
var budgetOpt = new Option<long?>("--budget-mib") { Description = "optim --paged: pager budget in MiB" };
bench.Arguments.Add(op);
foreach (Option o in new Option[] { backendOpt, threadsOpt, mOpt, kOpt, nOpt, quantOpt, dtypeOpt, blocksizeOpt, packedOpt, hotOpt, roundingOpt, repeatOpt, warmupOpt, maxSecondsOpt, benchJson, markdownOpt, plotOpt, jsonOutOpt, kindOpt, bitsOpt, pagedOpt, paramsOpt, tensorParamsOpt, budgetOpt, libraries })
{
    bench.Options.Add(o);
}

bench.SetAction(r => BenchCommand.Run(new BenchArgs(
    r.GetValue(op)!, r.GetValue(backendOpt)!, r.GetValue(threadsOpt)!, r.GetValue(mOpt), r.GetValue(kOpt), r.GetValue(nOpt), r.GetValue(quantOpt),
    r.GetValue(dtypeOpt)!, r.GetValue(blocksizeOpt), r.GetValue(packedOpt), r.GetValue(hotOpt), r.GetValue(roundingOpt)!, r.GetValue(repeatOpt),
    r.GetValue(warmupOpt), r.GetValue(maxSecondsOpt), r.GetValue(benchJson), r.GetValue(markdownOpt), r.GetValue(plotOpt), r.GetValue(jsonOutOpt),
    r.GetValue(libraries) ?? [])
{
    // 8-bit optimizer state rounding: the optimizers' default (lut, bitsandbytes' CPU library) unless --rounding is given.
    Optim = new OptimBenchArgs(r.GetValue(kindOpt)!, r.GetValue(bitsOpt), r.GetValue(pagedOpt), r.GetValue(paramsOpt), r.GetValue(tensorParamsOpt), r.GetValue(budgetOpt),
        r.GetResult(roundingOpt) is { Implicit: false } ? r.GetValue(roundingOpt)! : "lut"),
}));

var qInput = new Argument<string>("input") { Description = "Source model: a safetensors file with F32/F16/BF16 weights (config.json next to it is carried over)" };
var qOutput = new Option<string>("--output", "-o") { Description = "Output directory for model.safetensors and config.json", Required = true };
var qFormat = new Option<string>("--format", "-f") { Description = "int8 (LLM.int8) | nf4 | fp4", DefaultValueFactory = _ => "nf4" };
qFormat.AcceptOnlyFromAmong("int8", "nf4", "fp4");
var qDouble = new Option<bool>("--double-quant") { Description = "Double-quantize the 4-bit absmax (bnb_4bit_use_double_quant)" };
var qBlocksize = new Option<int>("--blocksize") { Description = "4-bit blocksize (Transformers uses 64)", DefaultValueFactory = _ => 64 };
var qSkip = new Option<string[]>("--skip") { Description = "Module to keep unquantized: dotted name segments (lm_head) or a glob (*attention*); repeatable", Arity = ArgumentArity.ZeroOrMore };
var qNoDefaultSkip = new Option<bool>("--no-default-skip") { Description = "Also quantize embeddings and lm_head (skipped by default)" };
var qCompute = new Option<string>("--compute-dtype") { Description = "bnb_4bit_compute_dtype recorded in config.json: f32 | f16 | bf16", DefaultValueFactory = _ => "f32" };
qCompute.AcceptOnlyFromAmong("f32", "f16", "bf16");
var qThreshold = new Option<double>("--threshold") { Description = "llm_int8_threshold recorded in config.json", DefaultValueFactory = _ => 6.0 };
var qBackend = new Option<string>("--backend", "-b") { Description = "Backend that quantizes (best = the runtime's default)", DefaultValueFactory = _ => "best" };
var qJson = new Option<bool>("--json") { Description = "Print the summary as one JSON object, no progress bar" };
var qOnnx = new Option<bool>("--onnx") { Description = "The input is an ONNX model (MatMul weights named through their bias Adds); all-MiniLM-L6-v2 names the bundled MiniLM" };
var quantize = new Command("quantize", "Quantize a safetensors model's linear weights into a bitsandbytes-layout checkpoint (+ config.json quantization_config)");
quantize.Arguments.Add(qInput);
foreach (Option o in new Option[] { qOutput, qFormat, qDouble, qBlocksize, qSkip, qNoDefaultSkip, qCompute, qThreshold, qBackend, qJson, qOnnx, libraries })
{
    quantize.Options.Add(o);
}

quantize.SetAction(r => QuantizeCommand.Run(new QuantizeArgs(
    r.GetValue(qInput)!, r.GetValue(qOutput)!, r.GetValue(qFormat)!, r.GetValue(qDouble), r.GetValue(qBlocksize), r.GetValue(qSkip) ?? [],
    r.GetValue(qNoDefaultSkip), r.GetValue(qCompute)!, r.GetValue(qThreshold), r.GetValue(qBackend)!, r.GetValue(qJson), r.GetValue(libraries) ?? [], r.GetValue(qOnnx))));

var root = new RootCommand("bnb — k-bit quantization backends (bitsandbytes numerics) behind one C ABI");
root.Subcommands.Add(info);
root.Subcommands.Add(demo);
root.Subcommands.Add(evalEncoder);
root.Subcommands.Add(bench);
root.Subcommands.Add(quantize);
return root.Parse(args).Invoke();
