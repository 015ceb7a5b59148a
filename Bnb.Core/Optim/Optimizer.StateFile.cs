using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bnb.Memory;
using Bnb.Serialization;

namespace Bnb.Optim;

// State files (docs/optimizers.md, "State files"): one safetensors file per optimizer.
//   tensors   state.<i>.<key>  for parameter index i (position across all groups) and bitsandbytes' keys
//             step (I64 [1]), state1, state2, absmax1, absmax2, qmap1, qmap2, unorm_vec, gnorm_vec
//   metadata  format = bnb.optimizer_state, format_version = 1, optimizer (class), kernel (bitsandbytes name),
//             rounding, params (JSON: index, name, dtype, shape), param_groups (JSON, bitsandbytes names),
//             sha256 = SHA-256 over every other metadata entry and every tensor (name, then bytes), in ordinal order.
public abstract partial class Optimizer
{
    /// <summary>The <c>format</c> metadata value of optimizer state files.</summary>
    public const string StateFormat = "bnb.optimizer_state";

    private const string StateFormatVersion = "1";

    private static readonly string[] StateKeys = ["step", "state1", "state2", "absmax1", "absmax2", "qmap1", "qmap2", "unorm_vec", "gnorm_vec"];

    private delegate void BytesAction(ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Saves the state of every parameter and the hyper-parameters of every group to a safetensors file (written to a
    /// temporary file, then renamed over <paramref name="path"/>). <see cref="LoadState(string)"/> on an optimizer of the same
    /// class over parameters of the same shapes resumes the run bit-identically.
    /// </summary>
    /// <exception cref="NotSupportedException">A state tensor is larger than 2 GiB.</exception>
    public void SaveState(string path)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(path);
        ParameterRef[] parameters = [.. Parameters];
        var tensors = new List<(string Name, StateBuffer? Buffer, byte[]? Bytes)>();
        for (int i = 0; i < parameters.Length; i++)
        {
            if (_state.GetValueOrDefault(parameters[i]) is not { } state)
            {
                continue;
            }

            tensors.Add(($"state.{i}.step", null, BitConverter.GetBytes((long)state.Step)));
            foreach (StateBuffer t in state.Tensors)
            {
                if (t.Bytes > int.MaxValue)
                {
                    throw new NotSupportedException($"state '{t.Name}' of {parameters[i].Describe()} has {t.Bytes} bytes; state files hold tensors up to 2 GiB");
                }

                tensors.Add(($"state.{i}.{t.Name}", t, null));
            }
        }

        tensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        List<KeyValuePair<string, string>> metadata =
        [
            new("format", StateFormat),
            new("format_version", StateFormatVersion),
            new("optimizer", GetType().Name),
            new("kernel", KernelName),
            new("rounding", Rounding == Quantization.Rounding.BnbCpuLut ? "bnb_cpu_lut" : "nearest"),
            new("params", ParamsJson(parameters)),
            new("param_groups", GroupsJson(parameters)),
        ];

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        HashMetadata(hash, metadata);
        foreach (var (name, buffer, bytes) in tensors)
        {
            HashName(hash, name);
            if (bytes is not null)
            {
                hash.AppendData(bytes);
            }
            else
            {
                WithBytes(buffer!, b => hash.AppendData(b));
            }
        }

        metadata.Add(new("sha256", Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant()));
        var specs = tensors.Select(t => t.Buffer is null
            ? new SafetensorsTensorSpec(t.Name, SafetensorsDType.I64, [1])
            : new SafetensorsTensorSpec(t.Name, SafetensorsDTypes.FromDType(t.Buffer.DType), t.Buffer.Shape));
        using SafetensorsWriter writer = SafetensorsWriter.Create(path, specs, metadata);
        foreach (var (name, buffer, bytes) in tensors)
        {
            if (bytes is not null)
            {
                writer.Write(name, bytes);
            }
            else
            {
                WithBytes(buffer!, b => writer.Write(name, b));
            }
        }

        writer.Commit();
    }

    /// <summary>
    /// Loads a state file written by <see cref="SaveState"/>: every parameter's state and every group's
    /// hyper-parameters are replaced. The file is validated completely first (format, optimizer class, checksum,
    /// parameter count and shapes, every tensor's presence, dtype and shape, hyper-parameter ranges); if anything is
    /// wrong this throws and the optimizer is unchanged.
    /// </summary>
    /// <exception cref="CheckpointFormatException">The file is truncated, corrupted, from another optimizer, or does not match the parameters.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public void LoadState(string path)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(path);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        LoadState(file);
    }

    /// <summary>Loads state from an open safetensors file; see <see cref="LoadState(string)"/>.</summary>
    public void LoadState(SafetensorsFile file)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(file);
        ParameterRef[] parameters = [.. Parameters];
        var plan = ValidateStateFile(file, parameters, out OptimizerSettings[] groupSettings);

        // Everything is valid: build the new states next to the old ones, then swap.
        var created = new List<ParameterState>();
        try
        {
            foreach (var (index, eightBit, step, names) in plan)
            {
                ParameterRef p = parameters[index];
                var buffers = new List<StateBuffer>();
                var state = new ParameterState(this, p, eightBit, buffers) { Step = step };
                created.Add(state);
                bool paged = IsPaged && p.ElementCount >= PagedMinElements;
                foreach (string key in names)
                {
                    SafetensorsTensorInfo info = file.GetInfo($"state.{index}.{key}");
                    bool pageable = paged && key is "state1" or "state2";
                    StateBuffer b = NewBuffer(key, info.DType.ToDType()!.Value, info.Shape, pageable);
                    buffers.Add(b);
                    b.CopyFrom(file.GetBytes(info.Name));
                }
            }
        }
        catch
        {
            foreach (ParameterState s in created)
            {
                s.Dispose();
            }

            throw;
        }

        foreach (ParameterState s in _state.Values)
        {
            s.Dispose();
        }

        _state.Clear();
        foreach (ParameterState s in created)
        {
            _state[s.Parameter] = s;
        }

        for (int g = 0; g < _groups.Count; g++)
        {
            _groups[g].SetResolved(groupSettings[g]);
        }
    }

    private List<(int Index, bool EightBit, int Step, List<string> Names)> ValidateStateFile(SafetensorsFile file, ParameterRef[] parameters, out OptimizerSettings[] groupSettings)
    {
        string source = file.Source;
        CheckpointFormatException Bad(string message, string? tensor = null) => new($"optimizer state: {message}", tensor, source);
        string Meta(string key) => file.Metadata.TryGetValue(key, out string? v) ? v : throw Bad($"metadata '{key}' is missing (not an optimizer state file written by SaveState?)");

        if (Meta("format") != StateFormat)
        {
            throw Bad($"metadata format is '{file.Metadata["format"]}', expected '{StateFormat}'");
        }

        if (Meta("format_version") != StateFormatVersion)
        {
            throw Bad($"format_version {file.Metadata["format_version"]} is not supported (this build reads {StateFormatVersion})");
        }

        if (Meta("optimizer") != GetType().Name || Meta("kernel") != KernelName)
        {
            throw Bad($"the file holds {file.Metadata["optimizer"]} state (kernel {file.Metadata["kernel"]}), this optimizer is {GetType().Name} (kernel {KernelName})");
        }

        // Checksum first: everything after it may trust the bytes.
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            HashMetadata(hash, [.. file.Header.MetadataEntries.Where(e => e.Key != "sha256")]);
            foreach (SafetensorsTensorInfo t in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                HashName(hash, t.Name);
                hash.AppendData(file.GetBytes(t.Name));
            }

            if (Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant() != Meta("sha256"))
            {
                throw Bad("checksum mismatch: the file is corrupted (sha256 of its metadata and tensors differs from the recorded one)");
            }
        }

        using JsonDocument paramsDoc = ParseJson(Meta("params"), "params", Bad);
        using JsonDocument groupsDoc = ParseJson(Meta("param_groups"), "param_groups", Bad);
        JsonElement[] ps = [.. paramsDoc.RootElement.EnumerateArray()];
        if (ps.Length != parameters.Length)
        {
            throw Bad($"the file has state for {ps.Length} parameters, the optimizer has {parameters.Length}");
        }

        for (int i = 0; i < ps.Length; i++)
        {
            long[] shape = [.. ps[i].GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
            if (!shape.SequenceEqual(parameters[i].Shape.ToArray()))
            {
                throw Bad($"parameter {i} ({parameters[i].Describe()}) has shape {parameters[i].Shape}, the file's has [{string.Join(", ", shape)}]");
            }
        }

        JsonElement[] gs = [.. groupsDoc.RootElement.EnumerateArray()];
        if (gs.Length != _groups.Count)
        {
            throw Bad($"the file has {gs.Length} parameter groups, the optimizer has {_groups.Count}");
        }

        groupSettings = new OptimizerSettings[gs.Length];
        int first = 0;
        for (int g = 0; g < gs.Length; g++)
        {
            int[] indices = [.. gs[g].GetProperty("params").EnumerateArray().Select(e => e.GetInt32())];
            if (!indices.SequenceEqual(Enumerable.Range(first, _groups[g].Parameters.Count)))
            {
                throw Bad($"parameter group {g} holds parameters [{string.Join(", ", indices)}] in the file, but {_groups[g].Parameters.Count} parameters from index {first} here");
            }

            first += indices.Length;
            try
            {
                groupSettings[g] = ParseGroup(gs[g]);
                CheckGroupSettings(groupSettings[g]);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw Bad($"parameter group {g}: {e.Message}");
            }
        }

        var known = new HashSet<string>(StringComparer.Ordinal);
        var plan = new List<(int, bool, int, List<string>)>();
        long rows = Kind == OptimizerKind.AdEMAMix ? 2 : 1;
        for (int i = 0; i < parameters.Length; i++)
        {
            string prefix = $"state.{i}.";
            if (!file.TryGetInfo(prefix + "step", out SafetensorsTensorInfo stepInfo))
            {
                if (file.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)))
                {
                    throw Bad($"parameter {i} has state tensors but no step", prefix + "step");
                }

                continue; // no state yet for this parameter
            }

            long n = parameters[i].ElementCount, blocks = (n + BlockSize - 1) / BlockSize;
            SafetensorsTensorInfo Require(string key, SafetensorsDType dtype, long[] shape)
            {
                string name = prefix + key;
                if (!file.TryGetInfo(name, out SafetensorsTensorInfo info))
                {
                    throw Bad($"tensor '{name}' is missing", name);
                }

                if (info.DType != dtype || !info.Shape.SequenceEqual(shape))
                {
                    throw Bad($"tensor '{name}' is {info.DType.Name()} {info.ShapeText}, expected {dtype.Name()} [{string.Join(", ", shape)}]", name);
                }

                known.Add(name);
                return info;
            }

            Require("step", SafetensorsDType.I64, [1]);
            long step = BitConverter.ToInt64(file.GetBytes(stepInfo.Name));
            if (step is < 0 or > int.MaxValue)
            {
                throw Bad($"step {step} of parameter {i} is out of range", stepInfo.Name);
            }

            var names = new List<string> { "state1" };
            bool eightBit = file.TryGetInfo(prefix + "state1", out var s1) && s1.DType == SafetensorsDType.U8;
            SafetensorsDType stateType = eightBit ? SafetensorsDType.U8 : SafetensorsDType.F32;
            Require("state1", stateType, rows == 2 ? [2, n] : [n]);
            if (TwoState)
            {
                Require("state2", stateType, [n]);
                names.Add("state2");
            }

            if (eightBit)
            {
                Require("absmax1", SafetensorsDType.F32, rows == 2 ? [2, blocks] : [blocks]);
                Require("qmap1", SafetensorsDType.F32, [256]);
                names.AddRange(["absmax1", "qmap1"]);
                if (TwoState)
                {
                    Require("absmax2", SafetensorsDType.F32, [blocks]);
                    Require("qmap2", SafetensorsDType.F32, [256]);
                    names.AddRange(["absmax2", "qmap2"]);
                }
            }

            foreach (var (key, shape) in new[] { ("unorm_vec", 1L), ("gnorm_vec", 100L) })
            {
                if (file.Contains(prefix + key))
                {
                    Require(key, SafetensorsDType.F32, [shape]);
                    names.Add(key);
                }
            }

            plan.Add((i, eightBit, (int)step, names));
        }

        if (file.Tensors.FirstOrDefault(t => !known.Contains(t.Name)) is { } extra)
        {
            throw Bad($"unexpected tensor '{extra.Name}' (state keys are {string.Join(", ", StateKeys)}, for parameters 0…{parameters.Length - 1})", extra.Name);
        }

        return plan;
    }

    private static JsonDocument ParseJson(string text, string key, Func<string, string?, CheckpointFormatException> bad)
    {
        try
        {
            JsonDocument doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                doc.Dispose();
                throw bad($"metadata '{key}' is not a JSON array", null);
            }

            return doc;
        }
        catch (JsonException e)
        {
            throw bad($"metadata '{key}' is not valid JSON: {e.Message}", null);
        }
    }

    private string ParamsJson(ParameterRef[] parameters) => Json(w =>
    {
        w.WriteStartArray();
        for (int i = 0; i < parameters.Length; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("index", i);
            w.WriteString("name", parameters[i].Name);
            w.WriteString("dtype", parameters[i].DType.TorchName());
            w.WriteStartArray("shape");
            foreach (long d in parameters[i].Shape.ToArray())
            {
                w.WriteNumberValue(d);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    /// <summary>param_groups with bitsandbytes' key names.</summary>
    private string GroupsJson(ParameterRef[] parameters) => Json(w =>
    {
        w.WriteStartArray();
        int index = 0;
        foreach (ParameterGroup group in _groups)
        {
            OptimizerSettings s = group.Settings;
            w.WriteStartObject();
            w.WriteNumber("lr", s.LearningRate ?? 0);
            w.WriteStartArray("betas");
            w.WriteNumberValue(s.Beta1 ?? 0);
            w.WriteNumberValue(s.Beta2 ?? 0);
            if (Kind == OptimizerKind.AdEMAMix)
            {
                w.WriteNumberValue(s.Beta3 ?? 0);
            }

            w.WriteEndArray();
            w.WriteNumber("eps", s.Eps ?? 0);
            w.WriteNumber("weight_decay", s.WeightDecay ?? 0);
            w.WriteNumber("alpha", s.Alpha ?? 0);
            WriteNullable(w, "t_alpha", s.TAlpha);
            WriteNullable(w, "t_beta3", s.TBeta3);
            w.WriteNumber("optim_bits", s.OptimBits ?? 32);
            w.WriteNumber("min_8bit_size", s.MinEightBitSize ?? 4096);
            w.WriteNumber("max_unorm", s.MaxUnorm ?? 0);
            w.WriteBoolean("skip_zeros", s.SkipZeros ?? false);
            w.WriteNumber("percentile_clipping", s.PercentileClipping ?? 100);
            w.WriteNumber("gnorm_scale", s.GradientNormScale ?? 1);
            w.WriteStartArray("params");
            for (int k = 0; k < group.Parameters.Count; k++)
            {
                w.WriteNumberValue(index++);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    private OptimizerSettings ParseGroup(JsonElement g)
    {
        double[] betas = [.. g.GetProperty("betas").EnumerateArray().Select(e => e.GetDouble())];
        int expected = Kind == OptimizerKind.AdEMAMix ? 3 : 2;
        if (betas.Length != expected)
        {
            throw new FormatException($"betas has {betas.Length} values, expected {expected}");
        }

        int? Nullable(string key) => g.GetProperty(key).ValueKind == JsonValueKind.Null ? null : g.GetProperty(key).GetInt32();
        return new OptimizerSettings
        {
            LearningRate = g.GetProperty("lr").GetDouble(),
            Beta1 = betas[0],
            Beta2 = betas[1],
            Beta3 = expected == 3 ? betas[2] : 0,
            Eps = g.GetProperty("eps").GetDouble(),
            WeightDecay = g.GetProperty("weight_decay").GetDouble(),
            Alpha = g.GetProperty("alpha").GetDouble(),
            TAlpha = Nullable("t_alpha"),
            TBeta3 = Nullable("t_beta3"),
            OptimBits = g.GetProperty("optim_bits").GetInt32(),
            MinEightBitSize = g.GetProperty("min_8bit_size").GetInt64(),
            MaxUnorm = g.GetProperty("max_unorm").GetDouble(),
            SkipZeros = g.GetProperty("skip_zeros").GetBoolean(),
            PercentileClipping = g.GetProperty("percentile_clipping").GetInt32(),
            GradientNormScale = g.GetProperty("gnorm_scale").GetDouble(),
        };
    }

    private static void WriteNullable(Utf8JsonWriter w, string key, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(key, v);
        }
        else
        {
            w.WriteNull(key);
        }
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void HashMetadata(IncrementalHash hash, IEnumerable<KeyValuePair<string, string>> metadata)
    {
        foreach (var (key, value) in metadata.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            HashName(hash, key);
            HashName(hash, value);
        }
    }

    private static void HashName(IncrementalHash hash, string name)
    {
        hash.AppendData(Encoding.UTF8.GetBytes(name));
        hash.AppendData([0]);
    }

    /// <summary>Hands the tensor's bytes to <paramref name="action"/> without a copy when it is host memory.</summary>
    private static unsafe void WithBytes(StateBuffer buffer, BytesAction action)
    {
        if (buffer.Device is not null)
        {
            action(buffer.ToArray<byte>());
            return;
        }

        using StateLease lease = buffer.Use(write: false);
        action(new ReadOnlySpan<byte>((void*)lease.Pointer, (int)buffer.Bytes));
    }
}
