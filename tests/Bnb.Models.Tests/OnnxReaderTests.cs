using Bnb.Models.Encoder;
using Bnb.Models.Onnx;

namespace Bnb.Models.Tests;

/// <summary>The protobuf/ONNX reader on hand-built models and on damaged copies of the real MiniLM file.</summary>
public sealed class OnnxReaderTests(MiniLmFixture fixture) : IClassFixture<MiniLmFixture>
{
    private static readonly Lazy<byte[]> MiniLmBytes = new(() => MiniLmPackage.Load().Onnx);

    // ── a tiny protobuf writer for hand-made models ─────────────────────────────────────────────────────────
    private static void Varint(List<byte> o, ulong v)
    {
        while (v >= 0x80)
        {
            o.Add((byte)(v | 0x80));
            v >>= 7;
        }

        o.Add((byte)v);
    }

    private static List<byte> Field(int field, int wireType)
    {
        var o = new List<byte>();
        Varint(o, (ulong)((field << 3) | wireType));
        return o;
    }

    private static byte[] Bytes(int field, byte[] payload)
    {
        var o = Field(field, 2);
        Varint(o, (ulong)payload.Length);
        o.AddRange(payload);
        return [.. o];
    }

    private static byte[] Str(int field, string s) => Bytes(field, System.Text.Encoding.UTF8.GetBytes(s));

    private static byte[] Int(int field, long v)
    {
        var o = Field(field, 0);
        Varint(o, (ulong)v);
        return [.. o];
    }

    private static byte[] Cat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static byte[] FloatTensor(string name, long[] dims, float[] values, bool raw) => Cat(
        Cat([.. dims.Select(d => Int(1, d))]), Int(2, 1), Str(8, name),
        raw ? Bytes(9, [.. values.SelectMany(BitConverter.GetBytes)]) : Bytes(4, [.. values.SelectMany(BitConverter.GetBytes)]));

    private static byte[] Node(string op, string[] inputs, string[] outputs, params byte[][] attributes) => Cat(
        Cat([.. inputs.Select(i => Str(1, i))]), Cat([.. outputs.Select(o => Str(2, o))]), Str(4, op), Cat([.. attributes.Select(a => Bytes(5, a))]));

    private static byte[] Model(params byte[][] graphFields) => Cat(Int(1, 8), Str(2, "test"), Bytes(7, Cat(graphFields)), Bytes(8, Cat(Str(1, ""), Int(2, 13))));

    [Fact]
    public void Reads_nodes_initializers_attributes_and_io_of_a_hand_made_model()
    {
        byte[] model = Model(
            Bytes(1, Node("MatMul", ["x", "w"], ["y"])),
            Bytes(1, Node("Add", ["b.bias", "y"], ["z"])),
            Bytes(1, Node("Softmax", ["z"], ["p"], Cat(Str(1, "axis"), Int(3, -1), Int(20, 2)))),
            Bytes(5, FloatTensor("w", [2, 3], [1, 2, 3, 4, 5, 6], raw: true)),
            Bytes(5, FloatTensor("b.bias", [3], [0.5f, -1, 2], raw: false)),
            Bytes(11, Str(1, "x")),
            Bytes(11, Str(1, "w")),
            Bytes(12, Str(1, "p")));
        var m = OnnxModel.Parse(model);
        Assert.Equal((8L, "test"), (m.IrVersion, m.Producer));
        Assert.Equal(["MatMul", "Add", "Softmax"], m.Nodes.Select(n => n.OpType));
        Assert.Equal(["x"], m.Inputs); // initializers listed as inputs are not graph inputs
        Assert.Equal(["p"], m.Outputs);
        Assert.Equal(-1, m.Nodes[2].Attribute("axis")!.Int);
        Assert.Equal([1f, 2, 3, 4, 5, 6], m.Initializers["w"].ToFloats());
        Assert.Equal([2L, 3], m.Initializers["w"].Dims);
        Assert.Equal([0.5f, -1, 2], m.Initializers["b.bias"].ToFloats());
        Assert.Equal([("", 13L)], m.Opsets);
        var e = Assert.Throws<NotSupportedException>(() => BertWeights.FromOnnx(m));
        Assert.Contains("not a BERT-family encoder", e.Message, StringComparison.Ordinal);
        Assert.Contains("embeddings.word_embeddings.weight", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tensor_data_that_does_not_match_the_shape_is_an_error_naming_the_tensor()
    {
        var m = OnnxModel.Parse(Model(Bytes(5, FloatTensor("w", [2, 3], [1, 2, 3, 4, 5], raw: true))));
        var e = Assert.Throws<OnnxFormatException>(() => m.Initializers["w"].ToFloats());
        Assert.Contains("'w' [2, 3]", e.Message, StringComparison.Ordinal);
        Assert.Contains("holds 20 bytes", e.Message, StringComparison.Ordinal);
        var ext = Model(Bytes(5, Cat(Int(1, 4), Int(2, 1), Str(8, "big"), Int(14, 1))));
        Assert.Contains("external file", Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(ext)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(5000)]
    [InlineData(1_000_000)]
    [InlineData(-1)] // all but the last byte
    public void Truncated_files_are_rejected_with_an_offset(int length)
    {
        byte[] full = MiniLmBytes.Value;
        int n = length < 0 ? full.Length + length : length;
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(full.AsMemory(0, n)));
        Assert.Matches(@"(at byte \d+|no graph|no ir_version)", e.Message);
    }

    [Fact]
    public void Corrupted_bytes_never_crash_the_reader()
    {
        byte[] full = MiniLmBytes.Value;
        var rng = new Random(1234);
        int errors = 0;
        for (int trial = 0; trial < 40; trial++)
        {
            // Corrupt bytes in the graph structure (the first ~4 KB hold node definitions; tensor payloads are opaque).
            byte[] copy = full[..200_000];
            for (int k = 0; k < 4; k++)
            {
                copy[rng.Next(0, 4000)] = (byte)rng.Next(256);
            }

            try
            {
                OnnxModel.Parse(copy);
            }
            catch (OnnxFormatException)
            {
                errors++;
            }
        }

        Assert.True(errors > 0, "a 200 KB prefix of the model should not parse");
    }

    [Fact]
    public void Non_onnx_input_gives_a_clear_error()
    {
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(System.Text.Encoding.UTF8.GetBytes("this is not a model\n")));
        Assert.Contains("ModelProto", e.Message, StringComparison.Ordinal);
        string path = Path.Combine(Path.GetTempPath(), $"bnb-missing-{Guid.NewGuid():N}.onnx");
        Assert.Throws<FileNotFoundException>(() => OnnxModel.Load(path));
    }

    [Fact]
    public void The_real_model_parses_to_the_expected_graph()
    {
        var m = OnnxModel.Parse(MiniLmBytes.Value);
        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], m.Inputs);
        Assert.Equal("last_hidden_state", m.Outputs[0]);
        Assert.Equal(36, m.Nodes.Count(n => n.OpType == "MatMul" && m.Initializers.ContainsKey(n.Inputs[1])));
        Assert.Equal([30522L, 384], m.Initializers["embeddings.word_embeddings.weight"].Dims);
        Assert.Same(fixture.Model.Weights, fixture.Model.Weights);
    }

    [Fact]
    public void Bad_vocabularies_are_rejected()
    {
        Assert.Contains("missing [CLS]", Assert.Throws<InvalidDataException>(() => SentenceTokenizer.FromBytes("[PAD]\n[SEP]\n[UNK]\nhello\n"u8.ToArray(), "v.txt")).Message, StringComparison.Ordinal);
        Assert.Contains("not UTF-8", Assert.Throws<InvalidDataException>(() => SentenceTokenizer.FromBytes([0xff, 0xfe, 0x00, 0x80], "v.txt")).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => SentenceTokenizer.Load("/nonexistent/vocab.txt"));

        // A vocabulary larger than the model's embedding table does not belong to it.
        string big = string.Join('\n', new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Enumerable.Range(0, 40000).Select(i => $"tok{i}")));
        var tokenizer = SentenceTokenizer.FromBytes(System.Text.Encoding.UTF8.GetBytes(big), "big.txt");
        var e = Assert.Throws<InvalidDataException>(() => new EncoderModel(fixture.Model.Weights, tokenizer, "x"));
        Assert.Contains("40005 entries", e.Message, StringComparison.Ordinal);
    }
}
