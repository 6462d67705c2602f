using System.Security.Cryptography;
using System.Text;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// The Bn.MLNet payload of a saved BatchNormCnn model: a small checksummed main block in ML.NET's main stream and the
/// network in the side stream <see cref="NetworkStreamName"/>, whose length and SHA-256 the main block records.
/// </summary>
/// <remarks>
/// Format version history:
/// <list type="bullet">
/// <item><description>1 (Bn.MLNet 0.1): first version.</description></item>
/// <item><description>
/// 2: the architecture JSON gains <c>batchRenormRMax</c>, <c>batchRenormDMax</c> and <c>batchRenormWarmupSteps</c>, and
/// <c>normalization</c> may be <c>BatchRenorm</c>; the byte layout is unchanged. Version 1 files (without these fields)
/// load with the fields' defaults, which only Batch Renormalization reads.
/// </description></item>
/// <item><description>
/// 3: the main block ends with a byte for test-time flip averaging (0 = off, 1 = on). Versions 1 and 2 (without it)
/// load with the option off.
/// </description></item>
/// <item><description>
/// 4: the tasks. The main block ends with the task (int32, <see cref="NetworkTask"/>) and the probability column's name;
/// the architecture JSON gains <c>task</c> and <c>standardization</c> (per feature for tabular input, so the input mean
/// and deviation hold one value per feature), and a regression network's state dict holds <c>target_mean</c> and
/// <c>target_std</c>; the side stream's class labels are absent for regression. Versions 1 to 3 load as multiclass with
/// per-channel standardization, as they were written.
/// </description></item>
/// <item><description>
/// 5: the main block ends with the scoring engine (int32, <see cref="ScoringEngine"/>). Versions 1 to 4 load with
/// <see cref="ScoringEngine.Automatic"/>.
/// </description></item>
/// </list>
/// Any change of the layout below increments <see cref="FormatVersion"/>; a reader refuses versions above its own.
/// </remarks>
internal static class BatchNormCnnModelFormat
{
    /// <summary>The payload format this code writes and the newest it reads.</summary>
    public const int FormatVersion = 5;

    /// <summary>The oldest payload format this code reads.</summary>
    public const int MinFormatVersion = 1;

    /// <summary>Name of the side stream holding the network.</summary>
    public const string NetworkStreamName = "BatchNormCnn.bin";

    private const int MaxMainBlock = 1 << 20;
    private const long MaxNetworkStream = 1L << 31;
    private const byte DTypeFloat32 = 1;
    private const byte DTypeInt64 = 2;

    /// <summary>Serializes the side stream.</summary>
    public static byte[] WriteNetwork(BatchNormCnnModelContent c)
    {
        // Binary format of the side stream "BatchNormCnn.bin" (all little-endian, strings as BinaryWriter strings):
        //   string   architecture JSON (NetworkArchitecture.ToJson; from version 2 with the Batch Renormalization fields)
        //   int32    C; float32[C] input mean; float32[C] input standard deviation
        //   labels   ClassLabels.Write: int32 count; byte type code; count values (absent for regression, from version 4)
        //   string   training history JSON ("" when there is none)
        //   int32    tensor count; per tensor, in state-dict order:
        //              string name; byte dtype (1 = float32, 2 = int64); int32 rank; int64[rank] shape; values
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(c.Architecture.ToJson());
            w.Write(c.InputMean.Length);
            foreach (var v in c.InputMean)
                w.Write(v);
            foreach (var v in c.InputStd)
                w.Write(v);
            if (c.Architecture.Task != NetworkTask.Regression)
                c.Labels.Write(w);
            w.Write(c.History?.ToJson() ?? string.Empty);
            w.Write(c.Tensors.Count);
            foreach (var t in c.Tensors)
            {
                w.Write(t.Name);
                switch (t.Data)
                {
                    case float[] f:
                        w.Write(DTypeFloat32);
                        WriteShape(w, t.Shape);
                        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()));
                        break;
                    case long[] l:
                        w.Write(DTypeInt64);
                        WriteShape(w, t.Shape);
                        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(l.AsSpan()));
                        break;
                    default:
                        throw new NotSupportedException($"State-dict entry '{t.Name}' has unsupported type {t.DType}.");
                }
            }
        }

        return ms.ToArray();
    }

    /// <summary>Writes the main block (after ML.NET's header).</summary>
    public static void WriteMain(BinaryWriter writer, BatchNormCnnModelContent c, byte[] network, int formatVersion = FormatVersion)
    {
        // Binary format of the main stream, after ML.NET's model header:
        //   int32    Bn.MLNet payload format version (FormatVersion)
        //   int32    length L of the main block
        //   byte[L]  main block:
        //              string  feature column; string label column; string score column; string predicted-label column
        //              string  embedding column ("" = none)
        //              int32   image channels, height, width
        //              int32   inference batch size
        //              int32   inference mode (BatchNormInferenceMode)
        //              int64   length of side stream "BatchNormCnn.bin"
        //              byte[32] SHA-256 of side stream "BatchNormCnn.bin"
        //              byte    test-time flip averaging (0 = off, 1 = on); from version 3
        //              int32   task (NetworkTask); string probability column; from version 4
        //              int32   scoring engine (ScoringEngine); from version 5
        //   byte[32] SHA-256 of the main block
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            var s = c.Columns;
            w.Write(s.FeatureColumnName);
            w.Write(s.LabelColumnName);
            w.Write(s.ScoreColumnName);
            w.Write(s.PredictedLabelColumnName);
            w.Write(s.EmbeddingColumnName ?? string.Empty);
            w.Write(s.ImageChannels);
            w.Write(s.ImageHeight);
            w.Write(s.ImageWidth);
            w.Write(c.Scoring.BatchSize);
            w.Write((int)c.Scoring.InferenceMode);
            w.Write((long)network.Length);
            w.Write(SHA256.HashData(network));
            if (formatVersion >= 3)
                w.Write(c.Scoring.TestTimeFlipAveraging);
            if (formatVersion >= 4)
            {
                w.Write((int)s.Task);
                w.Write(s.ProbabilityColumnName);
            }

            if (formatVersion >= 5)
                w.Write((int)c.Scoring.Engine);
        }

        var main = ms.ToArray();
        writer.Write(formatVersion);
        writer.Write(main.Length);
        writer.Write(main);
        writer.Write(SHA256.HashData(main));
    }

    /// <summary>The parsed main block.</summary>
    internal sealed record MainBlock(ColumnSettings Columns, ScoringSettings Scoring, long NetworkLength, byte[] NetworkHash, int Version);

    /// <summary>Reads and verifies the main block.</summary>
    /// <exception cref="InvalidDataException">Newer or unknown format, truncated, or checksum mismatch.</exception>
    public static MainBlock ReadMain(BinaryReader reader)
    {
        try
        {
            int version = reader.ReadInt32();
            if (version > FormatVersion)
            {
                throw new InvalidDataException(
                    $"This BatchNormCnn model was written in payload format {version} by a newer Bn.MLNet; this version reads formats {MinFormatVersion} to {FormatVersion}. Update Bn.MLNet.");
            }

            if (version < MinFormatVersion)
                throw new InvalidDataException($"This BatchNormCnn model has unknown payload format {version}; the file is corrupted.");
            int length = reader.ReadInt32();
            if (length <= 0 || length > MaxMainBlock)
                throw new InvalidDataException($"The BatchNormCnn model's main block length {length} is invalid; the file is corrupted.");
            var main = ReadExactly(reader, length, "main block");
            var hash = ReadExactly(reader, 32, "main block checksum");
            if (!SHA256.HashData(main).AsSpan().SequenceEqual(hash))
                throw new InvalidDataException("The BatchNormCnn model's main block fails its SHA-256 checksum; the file is corrupted or was edited.");

            using var r = new BinaryReader(new MemoryStream(main), Encoding.UTF8);
            var columns = new ColumnSettings(
                r.ReadString(), r.ReadString(), r.ReadString(), r.ReadString(), NullIfEmpty(r.ReadString()),
                r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
            int batch = r.ReadInt32();
            var mode = (BatchNormInferenceMode)r.ReadInt32();
            long networkLength = r.ReadInt64();
            var networkHash = r.ReadBytes(32);
            bool flip = version >= 3 && ReadFlag(r);
            if (version >= 4)
                columns = columns with { Task = (NetworkTask)r.ReadInt32(), ProbabilityColumnName = r.ReadString() };
            var engine = version >= 5 ? (ScoringEngine)r.ReadInt32() : ScoringEngine.Automatic;
            if (!Enum.IsDefined(engine))
                throw new InvalidDataException($"The BatchNormCnn model has unknown scoring engine {(int)engine}.");
            if (!Enum.IsDefined(columns.Task))
                throw new InvalidDataException($"The BatchNormCnn model has unknown task {(int)columns.Task}.");
            if (networkHash.Length != 32 || r.BaseStream.Position != main.Length)
                throw new InvalidDataException("The BatchNormCnn model's main block has an unexpected layout.");
            if (!Enum.IsDefined(mode))
                throw new InvalidDataException($"The BatchNormCnn model has unknown inference mode {(int)mode}.");
            if (batch < 1 || columns.ImageChannels < 1 || columns.ImageHeight < 1 || columns.ImageWidth < 1)
                throw new InvalidDataException("The BatchNormCnn model's main block has out-of-range values.");
            if (networkLength <= 0 || networkLength > MaxNetworkStream)
                throw new InvalidDataException($"The BatchNormCnn model's network length {networkLength} is invalid.");
            if (flip && columns.ImageWidth < 2)
                throw new InvalidDataException($"The BatchNormCnn model enables test-time flip averaging for {columns.ImageChannels}×{columns.ImageHeight}×{columns.ImageWidth} input, which is not an image.");
            return new MainBlock(columns, new ScoringSettings(mode, batch, flip, engine), networkLength, networkHash, version);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The BatchNormCnn model's main stream is truncated.", e);
        }
    }

    /// <summary>Reads the side stream's bytes and checks length and checksum against the main block.</summary>
    public static byte[] ReadNetworkBytes(BinaryReader reader, MainBlock main)
    {
        var bytes = ReadExactly(reader, checked((int)main.NetworkLength), $"stream {NetworkStreamName}");
        if (reader.BaseStream.ReadByte() != -1)
            throw new InvalidDataException($"The BatchNormCnn model's stream {NetworkStreamName} is longer than recorded; the file is corrupted or was edited.");
        if (!SHA256.HashData(bytes).AsSpan().SequenceEqual(main.NetworkHash))
            throw new InvalidDataException($"The BatchNormCnn model's stream {NetworkStreamName} fails its SHA-256 checksum; the file is corrupted or was edited.");
        return bytes;
    }

    /// <summary>Parses verified side-stream bytes.</summary>
    public static BatchNormCnnModelContent ParseNetwork(byte[] bytes, MainBlock main)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
            NetworkArchitecture arch = ReadArchitecture(r);
            if (main.Version < 4 && arch.IsTabular)
                arch.Standardization = StandardizationKind.PerChannel;   // as it was written: before version 4 always per channel
            if (arch.Task != main.Columns.Task)
                throw new InvalidDataException($"The BatchNormCnn model's network is for {arch.Task}, its columns for {main.Columns.Task}.");
            int c = r.ReadInt32();
            if (c != arch.StandardizationLength)
                throw new InvalidDataException($"The BatchNormCnn model stores {c} standardization values for a network that needs {arch.StandardizationLength}.");
            var mean = ReadArray(r, c, r.ReadSingle);
            var std = ReadArray(r, c, r.ReadSingle);
            if (mean.Any(v => !float.IsFinite(v)) || std.Any(v => !(v > 0) || !float.IsFinite(v)))
                throw new InvalidDataException("The BatchNormCnn model's input standardization has invalid values.");
            var labels = arch.Task == NetworkTask.Regression ? ClassLabels.None : ClassLabels.Read(r);
            if (arch.Task != NetworkTask.Regression && labels.Count != arch.ClassCount)
                throw new InvalidDataException($"The BatchNormCnn model has {labels.Count} class labels for {arch.ClassCount} network outputs.");
            TrainingHistory? history = ReadHistory(r);
            List<NamedTensor> tensors = ReadTensors(r, bytes.Length);
            if (r.BaseStream.Position != bytes.Length)
                throw new InvalidDataException($"The BatchNormCnn model's stream {NetworkStreamName} has {bytes.Length - r.BaseStream.Position} unexpected trailing bytes.");
            if (main.Columns.ImageChannels != arch.InputChannels || main.Columns.ImageHeight != arch.InputHeight || main.Columns.ImageWidth != arch.InputWidth)
                throw new InvalidDataException("The BatchNormCnn model's image shape differs from its network's input shape.");
            return new BatchNormCnnModelContent(main.Columns, main.Scoring, arch, mean, std, labels, history, tensors);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"The BatchNormCnn model's stream {NetworkStreamName} is truncated.", e);
        }
    }

    private static NetworkArchitecture ReadArchitecture(BinaryReader r)
    {
        try
        {
            return NetworkArchitecture.FromJson(r.ReadString());
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The BatchNormCnn model's architecture is invalid: {e.Message}", e);
        }
    }

    /// <summary>The training history (an empty string when none was saved).</summary>
    private static TrainingHistory? ReadHistory(BinaryReader r)
    {
        var historyJson = r.ReadString();
        if (historyJson.Length == 0)
            return null;
        try
        {
            return TrainingHistory.FromJson(historyJson);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"The BatchNormCnn model's training history is invalid: {e.Message}", e);
        }
    }

    /// <summary>The tensor count, then each tensor: name, dtype code, rank, shape, values.</summary>
    private static List<NamedTensor> ReadTensors(BinaryReader r, long streamLength)
    {
        int count = r.ReadInt32();
        if (count < 0 || count > 100_000)
            throw new InvalidDataException($"The BatchNormCnn model's tensor count {count} is invalid.");
        var tensors = new List<NamedTensor>(count);
        for (int i = 0; i < count; i++)
        {
            tensors.Add(ReadTensor(r, streamLength));
        }

        return tensors;
    }

    private static NamedTensor ReadTensor(BinaryReader r, long streamLength)
    {
        string name = r.ReadString();
        byte dtype = r.ReadByte();
        int rank = r.ReadInt32();
        if (rank < 0 || rank > 8)
            throw new InvalidDataException($"Tensor '{name}' has invalid rank {rank}.");
        var shape = ReadArray(r, rank, r.ReadInt64);
        long numel = 1;
        foreach (var d in shape)
        {
            if (d < 0 || d > int.MaxValue)
                throw new InvalidDataException($"Tensor '{name}' has invalid shape [{string.Join(", ", shape)}].");
            numel = checked(numel * d);
        }

        int elementSize = dtype == DTypeInt64 ? 8 : 4;
        if (numel * elementSize > streamLength - r.BaseStream.Position)
            throw new InvalidDataException($"Tensor '{name}' claims more values than the stream holds.");
        Array data = dtype switch
        {
            DTypeFloat32 => ReadArray(r, (int)numel, r.ReadSingle),
            DTypeInt64 => ReadArray(r, (int)numel, r.ReadInt64),
            _ => throw new InvalidDataException($"Tensor '{name}' has unknown dtype code {dtype}."),
        };
        return new NamedTensor(name, dtype == DTypeFloat32 ? ScalarType.Float32 : ScalarType.Int64, shape, data);
    }

    /// <summary>The state dict of <paramref name="network"/> as plain data (parameters and buffers, running statistics included).</summary>
    public static List<NamedTensor> ExportStateDict(BatchNormCnnNetwork network)
    {
        var list = new List<NamedTensor>();
        foreach (var (name, tensor) in network.state_dict())
        {
            using var cpu = tensor.detach().cpu().contiguous();
            Array data = cpu.dtype switch
            {
                ScalarType.Float32 => cpu.data<float>().ToArray(),
                ScalarType.Int64 => cpu.data<long>().ToArray(),
                _ => throw new NotSupportedException($"State-dict entry '{name}' has unsupported type {cpu.dtype}."),
            };
            list.Add(new NamedTensor(name, cpu.dtype, cpu.shape.ToArray(), data));
        }

        return list;
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> into <paramref name="network"/>'s state dict, strictly: every entry must exist
    /// with the same dtype and shape, no entry may be missing, and floating-point values must be finite.
    /// </summary>
    /// <exception cref="InvalidDataException">Missing, extra or mismatched weights, or non-finite values.</exception>
    public static void ImportStateDict(BatchNormCnnNetwork network, IReadOnlyList<NamedTensor> tensors)
    {
        var target = network.state_dict();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var extra = tensors.Select(t => t.Name).Where(n => !target.ContainsKey(n)).ToList();
        var missing = target.Keys.Where(k => !tensors.Any(t => t.Name == k)).ToList();
        if (extra.Count > 0 || missing.Count > 0)
        {
            throw new InvalidDataException(
                "The BatchNormCnn model's weights do not match its architecture" +
                (missing.Count > 0 ? $"; missing: {string.Join(", ", missing)}" : string.Empty) +
                (extra.Count > 0 ? $"; unexpected: {string.Join(", ", extra)}" : string.Empty) + ".");
        }

        using var noGrad = torch.no_grad();
        foreach (var t in tensors)
        {
            if (!seen.Add(t.Name))
                throw new InvalidDataException($"The BatchNormCnn model holds weight '{t.Name}' twice.");
            var dst = target[t.Name];
            if (dst.dtype != t.DType || !dst.shape.SequenceEqual(t.Shape))
            {
                throw new InvalidDataException(
                    $"Weight '{t.Name}' is {t.DType}[{string.Join(", ", t.Shape)}] in the model; the network expects {dst.dtype}[{string.Join(", ", dst.shape)}].");
            }

            using var src = t.Data switch
            {
                float[] f when f.All(float.IsFinite) => torch.tensor(f, t.Shape),
                float[] => throw new InvalidDataException($"Weight '{t.Name}' holds NaN or infinite values."),
                long[] l => torch.tensor(l, t.Shape),
                _ => throw new InvalidDataException($"Weight '{t.Name}' has unsupported data."),
            };
            dst.copy_(src);
        }
    }

    private static void WriteShape(BinaryWriter w, long[] shape)
    {
        w.Write(shape.Length);
        foreach (var d in shape)
            w.Write(d);
    }

    private static T[] ReadArray<T>(BinaryReader r, int count, Func<T> read)
    {
        var a = new T[count];
        for (int i = 0; i < count; i++)
            a[i] = read();
        return a;
    }

    private static byte[] ReadExactly(BinaryReader reader, int count, string what)
    {
        var bytes = reader.ReadBytes(count);
        if (bytes.Length != count)
            throw new InvalidDataException($"The BatchNormCnn model's {what} is truncated ({bytes.Length} of {count} bytes).");
        return bytes;
    }

    private static bool ReadFlag(BinaryReader r) => r.ReadByte() switch
    {
        0 => false,
        1 => true,
        var b => throw new InvalidDataException($"The BatchNormCnn model's test-time flip averaging flag is {b}; expected 0 or 1."),
    };

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}
