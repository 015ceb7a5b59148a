using System.Security.Cryptography;
using System.Text;
using Bnb.Optim;
using Bnb.Runtime;
using Bnb.Serialization;

namespace Bnb.Tests;

/// <summary>
/// Optimizer state files: a run saved mid-way and resumed from the file continues bit-identically (parameters and
/// raw state, uint8 codes and qmaps included); paged and unpaged files are interchangeable; a bad file (truncated,
/// corrupted, another optimizer, missing tensors, other shapes) is rejected with a clear error and leaves the
/// optimizer unchanged.
/// </summary>
public sealed class OptimStateTests(OptimBackendsFixture backends) : IClassFixture<OptimBackendsFixture>, IDisposable
{
    private const int Big = 9000, Small = 100;

    private readonly string _dir = Directory.CreateTempSubdirectory("bnb-optim-state-").FullName;

    public static TheoryData<string, int> Kinds => new()
    {
        { "adamw", 32 }, { "adamw", 8 }, { "lion", 32 }, { "lion", 8 }, { "momentum", 32 }, { "momentum", 8 },
        { "rmsprop", 32 }, { "rmsprop", 8 }, { "adagrad", 32 }, { "adagrad", 8 }, { "lamb", 32 }, { "lamb", 8 },
        { "lars", 32 }, { "lars", 8 }, { "ademamix", 32 }, { "ademamix", 8 }, { "adam_clipped", 32 }, { "adam_clipped", 8 },
    };

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [CpuBackendsTheory]
    [MemberData(nameof(Kinds))]
    public void Saving_and_resuming_mid_run_continues_bit_identically(string kind, int bits)
    {
        BnbContext ctx = backends.Context(OptimBackendsFixture.AvailableBackends[^1]);
        Run a = new(ctx, kind, bits);
        a.Steps(0, 5);
        string path = Path.Combine(_dir, $"{kind}{bits}.safetensors");
        a.Optimizer.SaveState(path);

        // A fresh optimizer over copies of the parameters at step 5 resumes from the file.
        Run b = new(ctx, kind, bits, a.Values);
        b.Optimizer.LoadState(path);
        AssertSameState(a.Optimizer, b.Optimizer);
        a.Steps(5, 10);
        b.Steps(5, 10);
        for (int i = 0; i < a.Values.Length; i++)
        {
            Assert.Equal(a.Values[i], b.Values[i]);
        }

        AssertSameState(a.Optimizer, b.Optimizer);
        ParameterState big = b.Optimizer.GetState(b.Parameters[0])!, small = b.Optimizer.GetState(b.Parameters[1])!;
        Assert.Equal(bits == 8, big.IsEightBit);
        Assert.False(small.IsEightBit); // below min_8bit_size
        Assert.Equal(10, big.Step);
        if (kind is "lamb" or "lars")
        {
            Assert.True(small.UpdateNorm > 0); // trust ratio on 32-bit state: unorm_vec recorded and restored
        }

        a.Optimizer.Dispose();
        b.Optimizer.Dispose();
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Paged_and_unpaged_state_files_are_interchangeable(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        Run paged = new(ctx, "adamw", 8, paged: true);
        paged.Optimizer.PagedMinElements = 1000;
        paged.Steps(0, 3);
        Assert.True(paged.Optimizer.GetState(paged.Parameters[0])!.IsPaged);
        string path = Path.Combine(_dir, "paged.safetensors");
        paged.Optimizer.SaveState(path);
        Run plain = new(ctx, "adamw", 8, paged.Values);
        plain.Optimizer.LoadState(path);
        AssertSameState(paged.Optimizer, plain.Optimizer);
        paged.Steps(3, 5);
        plain.Steps(3, 5);
        Assert.Equal(paged.Values[0], plain.Values[0]);
        paged.Optimizer.Dispose();
        plain.Optimizer.Dispose();
    }

    [CpuBackendsTheory]
    [MemberData(nameof(OptimBackendsFixture.Backends), MemberType = typeof(OptimBackendsFixture))]
    public void Group_hyper_parameters_are_restored(string backend)
    {
        BnbContext ctx = backends.Context(backend);
        Run a = new(ctx, "adamw", 8);
        a.Optimizer.ParamGroups[0].LearningRate = 3e-4;
        a.Optimizer.ParamGroups[0].Settings = new OptimizerSettings { WeightDecay = 0.05, PercentileClipping = 90 };
        a.Steps(0, 2);
        string path = Path.Combine(_dir, "groups.safetensors");
        a.Optimizer.SaveState(path);
        Run b = new(ctx, "adamw", 8, a.Values);
        b.Optimizer.LoadState(path);
        OptimizerSettings s = b.Optimizer.ParamGroups[0].Settings;
        Assert.Equal(3e-4, s.LearningRate);
        Assert.Equal(0.05, s.WeightDecay);
        Assert.Equal(90, s.PercentileClipping);
        Assert.Equal(a.Optimizer.ParamGroups[0].Settings, s);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(Optimizer.StateFormat, file.Metadata["format"]);
        Assert.Contains("\"lr\":0.0003", file.Metadata["param_groups"], StringComparison.Ordinal);
        Assert.Contains("\"weight_decay\":0.05", file.Metadata["param_groups"], StringComparison.Ordinal);
        Assert.True(file.Contains("state.0.gnorm_vec"));
        a.Optimizer.Dispose();
        b.Optimizer.Dispose();
    }

    public static TheoryData<string> BadFiles => ["truncated", "flipped data byte", "flipped metadata", "other optimizer", "missing state2", "missing absmax1", "wrong shape", "wrong dtype", "other parameter count", "not safetensors", "extra tensor"];

    [CpuBackendsTheory]
    [MemberData(nameof(BadFiles))]
    public void A_bad_state_file_is_rejected_and_the_optimizer_is_unchanged(string what)
    {
        BnbContext ctx = backends.Context(OptimBackendsFixture.AvailableBackends[^1]);
        Run good = new(ctx, "adamw", 8);
        good.Steps(0, 3);
        string path = Path.Combine(_dir, "good.safetensors");
        good.Optimizer.SaveState(path);
        string bad = Path.Combine(_dir, "bad.safetensors");
        string expected = MakeBad(ctx, what, path, bad, good.Values);

        Run victim = new(ctx, "adamw", 8);
        victim.Steps(0, 2);
        var before = Snapshot(victim.Optimizer);
        Exception e = Assert.ThrowsAny<Exception>(() => victim.Optimizer.LoadState(bad));
        Assert.True(e is CheckpointFormatException, $"{what}: {e.GetType().Name}: {e.Message}");
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(victim.Optimizer));
        Assert.Equal(2, victim.Optimizer.GetState(victim.Parameters[0])!.Step);
        Assert.Equal(1e-3, victim.Optimizer.ParamGroups[0].LearningRate);
        good.Optimizer.Dispose();
        victim.Optimizer.Dispose();
    }

    /// <summary>Writes a bad variant of the good file; returns a fragment the error message must contain.</summary>
    private static string MakeBad(BnbContext ctx, string what, string good, string bad, float[][] values)
    {
        byte[] bytes = File.ReadAllBytes(good);
        switch (what)
        {
            case "truncated":
                File.WriteAllBytes(bad, bytes[..(bytes.Length - 100)]);
                return "truncated";
            case "flipped data byte":
                bytes[^7] ^= 0x10;
                File.WriteAllBytes(bad, bytes);
                return "checksum mismatch";
            case "flipped metadata":
                string text = Encoding.UTF8.GetString(bytes);
                int at = text.IndexOf("\\\"lr\\\":0.001", StringComparison.Ordinal);
                Assert.True(at > 0, "lr not found in the header");
                bytes[at + 12] = (byte)'2';
                File.WriteAllBytes(bad, bytes);
                return "checksum mismatch";
            case "other optimizer":
                var lionValues = new float[Big];
                var lion = new Lion(ctx, [ParameterRef.Create<float>(lionValues, new float[Big]), ParameterRef.Create<float>(new float[Small], new float[Small])]);
                lion.Step();
                lion.SaveState(bad);
                lion.Dispose();
                return "holds Lion state (kernel lion), this optimizer is AdamW";
            case "other parameter count":
                var one = new AdamW(ctx, [ParameterRef.Create<float>(new float[Big], new float[Big])], optimBits: 8);
                one.Step();
                one.SaveState(bad);
                one.Dispose();
                return "state for 1 parameters, the optimizer has 2";
            case "wrong shape":
                var other = new AdamW(ctx, [ParameterRef.Create<float>(new float[Big + 1], new float[Big + 1]), ParameterRef.Create<float>(new float[Small], new float[Small])], optimBits: 8);
                other.Step();
                other.SaveState(bad);
                other.Dispose();
                return "has shape [9000], the file's has [9001]";
            case "not safetensors":
                File.WriteAllText(bad, "{\"this is\": \"not a safetensors file\"}");
                return "";
            default:
                Rewrite(good, bad, what);
                return what switch
                {
                    "missing state2" => "tensor 'state.0.state2' is missing",
                    "missing absmax1" => "tensor 'state.0.absmax1' is missing",
                    "wrong dtype" => "tensor 'state.0.absmax2' is F16 [36], expected F32 [36]",
                    _ => "unexpected tensor 'state.0.exp_avg'",
                };
        }
    }

    /// <summary>Rewrites the file with one tensor changed, re-signed per the documented sha256 rule (so the structural check, not the checksum, must catch it).</summary>
    private static void Rewrite(string good, string bad, string what)
    {
        using SafetensorsFile file = SafetensorsFile.Open(good);
        var entries = new List<SafetensorsEntry>();
        foreach (SafetensorsTensorInfo t in file.Tensors)
        {
            byte[] data = file.GetBytes(t.Name).ToArray();
            switch (what, t.Name)
            {
                case ("missing state2", "state.0.state2"):
                case ("missing absmax1", "state.0.absmax1"):
                    continue;
                case ("wrong dtype", "state.0.absmax2"):
                    entries.Add(new SafetensorsEntry(t.Name, SafetensorsDType.F16, t.Shape, data[..(data.Length / 2)]));
                    continue;
                case ("extra tensor", "state.0.state1"):
                    entries.Add(new SafetensorsEntry("state.0.exp_avg", t.DType, t.Shape, data));
                    break;
            }

            entries.Add(new SafetensorsEntry(t.Name, t.DType, t.Shape, data));
        }

        var metadata = file.Header.MetadataEntries.Where(e => e.Key != "sha256").ToList();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (k, v) in metadata.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(k + "\0" + v + "\0"));
        }

        foreach (SafetensorsEntry e in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(e.Name + "\0"));
            hash.AppendData(e.Data.Span);
        }

        metadata.Add(new("sha256", Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant()));
        SafetensorsWriter.Save(bad, entries, metadata);
    }

    private static Dictionary<string, string> Snapshot(Optimizer opt)
    {
        var result = new Dictionary<string, string>();
        int i = 0;
        foreach (ParameterRef p in opt.Parameters)
        {
            if (opt.GetState(p) is { } s)
            {
                foreach (string name in s.TensorNames)
                {
                    result[$"{i}.{name}"] = Convert.ToHexString(SHA256.HashData(s.GetBytes(name)));
                }

                result[$"{i}.step"] = s.Step.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            i++;
        }

        return result;
    }

    private static void AssertSameState(Optimizer a, Optimizer b)
    {
        foreach (var (pa, pb) in a.Parameters.Zip(b.Parameters))
        {
            ParameterState sa = a.GetState(pa)!, sb = b.GetState(pb)!;
            Assert.Equal(sa.Step, sb.Step);
            Assert.Equal(sa.IsEightBit, sb.IsEightBit);
            Assert.Equal(sa.TensorNames, sb.TensorNames);
            foreach (string name in sa.TensorNames)
            {
                Assert.Equal(sa.GetBytes(name), sb.GetBytes(name));
            }
        }
    }

    /// <summary>One training run: a big (8-bit capable) and a small (always 32-bit) parameter with fixed gradients per step.</summary>
    private sealed class Run
    {
        private readonly float[][] _grads;

        public Run(BnbContext ctx, string kind, int bits, float[][]? start = null, bool paged = false)
        {
            Values = start is null ? [OptimData.Normal(Big, 0.1, 1), OptimData.Normal(Small, 0.1, 2)] : [.. start.Select(v => (float[])v.Clone())];
            _grads = [new float[Big], new float[Small]];
            Parameters = [ParameterRef.Create<float>(Values[0], _grads[0], "big"), ParameterRef.Create<float>(Values[1], _grads[1], "small")];
            Optimizer = kind switch
            {
                "adamw" => new AdamW(ctx, Parameters, optimBits: bits, paged: paged),
                "adam_clipped" => new Adam(ctx, Parameters, optimBits: bits, percentileClipping: 5),
                "lion" => new Lion(ctx, Parameters, optimBits: bits),
                "momentum" => new Sgd(ctx, Parameters, 0.01, 0.9, weightDecay: 1e-3, optimBits: bits),
                "rmsprop" => new RmsProp(ctx, Parameters, 0.01, 0.9, optimBits: bits),
                "adagrad" => new Adagrad(ctx, Parameters, optimBits: bits),
                "lamb" => new Lamb(ctx, Parameters, optimBits: bits),
                "lars" => new Lars(ctx, Parameters, 0.01, 0.9, optimBits: bits),
                _ => new AdEMAMix(ctx, Parameters, optimBits: bits, tAlpha: 4, tBeta3: 4),
            };
        }

        public float[][] Values { get; }

        public ParameterRef[] Parameters { get; }

        public Optimizer Optimizer { get; }

        public void Steps(int from, int to)
        {
            for (int s = from; s < to; s++)
            {
                OptimData.Normal(Big, 0.01, 1000 + s).CopyTo(_grads[0], 0);
                OptimData.Normal(Small, 0.01, 2000 + s).CopyTo(_grads[1], 0);
                Optimizer.Step();
            }
        }
    }
}
