using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bn.MLNet.Networks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>Where a run stood at a checkpoint, besides its tensors and its history.</summary>
/// <param name="CompletedEpochs">Epochs done.</param>
/// <param name="Steps">Optimizer steps done.</param>
/// <param name="ElapsedSeconds">Training time so far (the clock a time budget counts).</param>
/// <param name="Finished">Whether the run had ended: the tensors are then the model it returned.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="BestMetric">Early stopping: the best validation metric so far (−∞ before any).</param>
/// <param name="EpochsWithoutImprovement">Early stopping: epochs since the best.</param>
/// <param name="WeightAverageUpdates">Updates of the weight average.</param>
/// <param name="BFloat16Decisions">The bfloat16 guards' decisions: feature layer, input shape, bfloat16 used.</param>
internal sealed record CheckpointProgress(
    int CompletedEpochs, long Steps, double ElapsedSeconds, bool Finished, int Seed, double BestMetric, int EpochsWithoutImprovement,
    long WeightAverageUpdates, List<BFloat16Decision> BFloat16Decisions);

/// <summary>One bfloat16 guard decision.</summary>
internal sealed record BFloat16Decision(int Layer, ShapeKey Shape, bool UseBFloat16);

/// <summary>
/// A training checkpoint: everything a run needs to go on exactly where it stood at the end of an epoch, or, for a
/// finished run, the model it returned. Written and verified as one file (see <see cref="Write"/> for the format).
/// </summary>
internal sealed class Checkpoint
{
    /// <summary>File name extension of checkpoints.</summary>
    public const string Extension = ".bnckpt";

    /// <summary>The checkpoint format this code writes and reads.</summary>
    /// <remarks>Format history: 1 (Bn.MLNet 0.1): first version.</remarks>
    public const int FormatVersion = 1;

    private const string Magic = "Bn.MLNet.Checkpoint";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly byte[] _payload;
    private readonly long _tensorsStart;

    private Checkpoint(string path, string identity, CheckpointProgress progress, string historyJson, byte[] payload, long tensorsStart)
    {
        (Path, Identity, Progress, HistoryJson, _payload, _tensorsStart) = (path, identity, progress, historyJson, payload, tensorsStart);
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>What the run computes (<see cref="TrainingIdentity"/>), as JSON.</summary>
    public string Identity { get; }

    public CheckpointProgress Progress { get; }

    /// <summary>The training history up to the checkpoint.</summary>
    public string HistoryJson { get; }

    /// <summary>The parts of a run that a checkpoint holds tensors of.</summary>
    internal sealed record Parts(
        BatchNormCnnNetwork Network, optim.Optimizer Optimizer, IReadOnlyList<(string, Tensor)>? Best, IReadOnlyList<(string, Tensor)>? Average);

    /// <summary>Writes a checkpoint to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, string identity, CheckpointProgress progress, TrainingHistory history, Parts parts)
    {
        // Binary format (BinaryWriter: little-endian, strings UTF-8 with a 7-bit length prefix):
        //   string   "Bn.MLNet.Checkpoint"; int32 format version (1)
        //   string   identity JSON (TrainingIdentity: the settings and data a resumed run must share)
        //   string   progress JSON (CheckpointProgress)
        //   string   training history JSON (TrainingHistory.ToJson)
        //   tensors  the network's state dict: parameters and every buffer (TensorList)
        //   int32 L, byte[L]  the optimizer's state (TorchSharp's save_state_dict: momentum or Adam moments per parameter)
        //   byte 0/1, then tensors   the best validation epoch's state, when kept
        //   byte 0/1, then tensors   the weight average, when on
        //   byte[32] SHA-256 of everything before
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(identity);
            w.Write(JsonSerializer.Serialize(progress, Json));
            w.Write(history.ToJson());
            TensorList.Write(w, parts.Network.state_dict().Select(p => (p.Key, p.Value)).ToList());
            using var optimizer = new MemoryStream();
            using (var ow = new BinaryWriter(optimizer, Encoding.UTF8, leaveOpen: true))
                ((OptimizerHelper)parts.Optimizer).save_state_dict(ow);
            w.Write(checked((int)optimizer.Length));
            w.Write(optimizer.GetBuffer(), 0, (int)optimizer.Length);
            WriteOptional(w, parts.Best);
            WriteOptional(w, parts.Average);
        }

        stream.Write(payload.GetBuffer(), 0, (int)payload.Length);
        stream.Write(SHA256.HashData(payload.GetBuffer().AsSpan(0, (int)payload.Length)));
    }

    /// <summary>Reads and verifies the checkpoint in <paramref name="path"/> (its tensors are copied out later by <see cref="RestoreInto"/>).</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, another format version, truncated, or its checksum fails; the message names the file.</exception>
    public static Checkpoint Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 32 || !SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw Corrupt(path, "its SHA-256 checksum fails (the file is truncated or was changed)");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 32), Encoding.UTF8);
            if (r.ReadString() != Magic)
                throw Corrupt(path, "it does not start with the checkpoint header");
            int version = r.ReadInt32();
            if (version != FormatVersion)
                throw Corrupt(path, $"it has checkpoint format {version}; this Bn.MLNet reads format {FormatVersion}");
            string identity = r.ReadString();
            var progress = JsonSerializer.Deserialize<CheckpointProgress>(r.ReadString(), Json) ?? throw Corrupt(path, "its progress record is empty");
            string history = r.ReadString();
            return new Checkpoint(path, identity, progress, history, bytes, r.BaseStream.Position);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or DecoderFallbackException)
        {
            throw Corrupt(path, e.Message);
        }
    }

    /// <summary>
    /// Copies the checkpoint's tensors into a run's parts (which must have the same shapes); <paramref name="best"/> gives
    /// the tensors to fill with the best epoch's state when the checkpoint holds one.
    /// </summary>
    /// <exception cref="InvalidDataException">The tensors do not fit the parts; the message names the file.</exception>
    public void RestoreInto(BatchNormCnnNetwork network, optim.Optimizer optimizer, Func<IReadOnlyList<(string, Tensor)>> best, IReadOnlyList<(string, Tensor)>? average)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(_payload, 0, _payload.Length - 32), Encoding.UTF8);
            r.BaseStream.Position = _tensorsStart;
            TensorList.ReadInto(r, network.state_dict().Select(p => (p.Key, p.Value)).ToList(), "network");
            byte[] optimizerState = r.ReadBytes(r.ReadInt32());
            using (var or = new BinaryReader(new MemoryStream(optimizerState), Encoding.UTF8))
                ((OptimizerHelper)optimizer).load_state_dict(or);
            if (r.ReadBoolean())
                TensorList.ReadInto(r, best(), "best epoch's state");
            ReadOptional(r, average, "weight average");
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or ArgumentException)
        {
            throw Corrupt(Path, e.Message);
        }
    }

    /// <summary>Copies only the network's state (a finished run's model).</summary>
    public void RestoreNetwork(BatchNormCnnNetwork network)
    {
        using var r = new BinaryReader(new MemoryStream(_payload, 0, _payload.Length - 32), Encoding.UTF8);
        r.BaseStream.Position = _tensorsStart;
        TensorList.ReadInto(r, network.state_dict().Select(p => (p.Key, p.Value)).ToList(), "network");
    }

    private static void WriteOptional(BinaryWriter w, IReadOnlyList<(string, Tensor)>? tensors)
    {
        w.Write(tensors is not null);
        if (tensors is not null)
            TensorList.Write(w, tensors);
    }

    private static void ReadOptional(BinaryReader r, IReadOnlyList<(string, Tensor)>? targets, string what)
    {
        bool stored = r.ReadBoolean();
        if (stored != targets is not null)
            throw new InvalidDataException($"the {what} is {(stored ? "stored but not expected" : "expected but not stored")}");
        if (targets is not null)
            TensorList.ReadInto(r, targets, what);
    }

    private static InvalidDataException Corrupt(string path, string why) =>
        new($"The checkpoint '{path}' cannot be read: {why}. Delete it (the previous checkpoint, if kept, is used then) or use another checkpoint folder.");
}
