using System.Text;
using Microsoft.ML.Tokenizers;

namespace Bnb.Models.Encoder;

/// <summary>
/// WordPiece tokenization for BERT-family encoders (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>, lower-casing
/// as uncased BERT/MiniLM): <c>[CLS] tokens… [SEP]</c>, truncated to a maximum length.
/// </summary>
public sealed class SentenceTokenizer
{
    private static readonly string[] Required = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    private readonly BertTokenizer _tokenizer;

    private SentenceTokenizer(BertTokenizer tokenizer, int vocabularySize)
    {
        _tokenizer = tokenizer;
        VocabularySize = vocabularySize;
    }

    /// <summary>Entries in vocab.txt (one token per line; the line number is the id).</summary>
    public int VocabularySize { get; }

    /// <summary>Loads a vocab.txt file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Not a WordPiece vocabulary (empty, or missing one of [PAD] [UNK] [CLS] [SEP] [MASK]).</exception>
    public static SentenceTokenizer Load(string vocabPath, bool lowerCase = true)
    {
        if (!File.Exists(vocabPath))
        {
            throw new FileNotFoundException($"vocabulary not found: {vocabPath}", vocabPath);
        }

        return FromBytes(File.ReadAllBytes(vocabPath), vocabPath, lowerCase);
    }

    /// <summary>Loads vocab.txt bytes; <paramref name="source"/> names them in errors.</summary>
    public static SentenceTokenizer FromBytes(byte[] vocab, string source, bool lowerCase = true)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(vocab);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{source}: not a vocab.txt (not UTF-8 text: {e.Message})", e);
        }

        string[] lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        var missing = Required.Where(r => !lines.Take(count).Contains(r)).ToList();
        if (count == 0 || missing.Count > 0)
        {
            throw new InvalidDataException($"{source}: not a WordPiece vocab.txt ({count} lines; missing {string.Join(", ", missing)})");
        }

        if (lines.Take(count).Any(l => l.Length == 0))
        {
            throw new InvalidDataException($"{source}: not a WordPiece vocab.txt (empty line {Array.IndexOf(lines, "") + 1})");
        }

        using var stream = new MemoryStream(vocab, writable: false);
        try
        {
            var tokenizer = BertTokenizer.Create(stream, new BertOptions { LowerCaseBeforeTokenization = lowerCase });
            return new SentenceTokenizer(tokenizer, count);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{source}: not a usable WordPiece vocab.txt ({e.Message})", e);
        }
    }

    /// <summary>Token ids of one sentence with [CLS] and [SEP], at most <paramref name="maxTokens"/> (≥ 2) of them.</summary>
    public int[] Encode(string sentence, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(sentence);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        var ids = _tokenizer.EncodeToIds(sentence, addSpecialTokens: false);
        int body = Math.Min(ids.Count, maxTokens - 2);
        var result = new int[body + 2];
        result[0] = _tokenizer.ClassificationTokenId;
        for (int i = 0; i < body; i++)
        {
            result[i + 1] = ids[i];
        }

        result[^1] = _tokenizer.SeparatorTokenId;
        return result;
    }
}
