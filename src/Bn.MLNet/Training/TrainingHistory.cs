using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>What a <see cref="Trainer"/> run did: per-epoch and per-K-step records, and how it ended. Exports CSV and JSON.</summary>
public sealed class TrainingHistory
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>One row per completed epoch.</summary>
    [JsonIgnore]
    public IReadOnlyList<HistoryEntry> Epochs => EpochsData;

    [JsonInclude]
    [JsonPropertyName("epochs")]
    internal List<HistoryEntry> EpochsData { get; set; } = new();

    /// <summary>One row every <see cref="TrainerOptions.LogEverySteps"/> steps.</summary>
    [JsonIgnore]
    public IReadOnlyList<HistoryEntry> Steps => StepsData;

    [JsonInclude]
    [JsonPropertyName("steps")]
    internal List<HistoryEntry> StepsData { get; set; } = new();

    /// <summary>The probed layers, in the order of each row's percentiles.</summary>
    [JsonIgnore]
    public IReadOnlyList<ProbedLayer> Layers => LayersData;

    [JsonInclude]
    [JsonPropertyName("layers")]
    internal List<ProbedLayer> LayersData { get; set; } = new();

    /// <summary>
    /// Set when a NaN or infinite loss, or NaN or infinite weights or running statistics, stopped training; the network
    /// then holds the last finite state (see <see cref="DivergenceInfo.RestoredStep"/>).
    /// </summary>
    [JsonInclude]
    public DivergenceInfo? Divergence { get; internal set; }

    /// <summary>True when training stopped on a NaN or infinite loss.</summary>
    [JsonIgnore]
    public bool Diverged => Divergence is not null;

    /// <summary>Zero-based epoch with the best validation metric, when there was a validation source.</summary>
    [JsonInclude]
    public int? BestEpoch { get; internal set; }

    /// <summary>Whether early stopping ended training before the planned epochs/steps.</summary>
    [JsonInclude]
    public bool StoppedEarly { get; internal set; }

    /// <summary>Whether <see cref="TrainerOptions.TimeBudget"/> ended training before the planned epochs/steps.</summary>
    [JsonInclude]
    public bool StoppedByTimeBudget { get; internal set; }

    /// <summary>Whether the best epoch's weights were loaded back at the end.</summary>
    [JsonInclude]
    public bool RestoredBestWeights { get; internal set; }

    /// <summary>
    /// Whether the network received the exponential moving average of its weights at the end
    /// (<see cref="TrainerOptions.WeightAveragingDecay"/>); false when averaging was off, or when the average was not finite
    /// (see <see cref="WeightAverageNote"/>).
    /// </summary>
    [JsonInclude]
    public bool UsedWeightAverage { get; internal set; }

    /// <summary>Why the weight average was not used although it was on (for example "not finite: ..."); null otherwise.</summary>
    [JsonInclude]
    public string? WeightAverageNote { get; internal set; }

    /// <summary>
    /// The convolutions that ran in float32 instead of bfloat16 because their bfloat16 result was wrong on this CPU for an
    /// input shape (<see cref="Networks.NetworkArchitecture.BFloat16Convolutions"/>), one line each; empty otherwise.
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<string> BFloat16Fallbacks => BFloat16FallbacksData;

    [JsonInclude]
    [JsonPropertyName("bFloat16Fallbacks")]
    internal List<string> BFloat16FallbacksData { get; set; } = new();

    /// <summary>The epochs a checkpoint held when this run resumed from it (<see cref="TrainerOptions.CheckpointDirectory"/>); null for a fresh run.</summary>
    [JsonInclude]
    public int? ResumedAfterEpoch { get; internal set; }

    /// <summary>Whether the checkpoint held a finished run, whose model was returned without training.</summary>
    [JsonInclude]
    public bool LoadedFinishedRun { get; internal set; }

    /// <summary>The seed the run used (<see cref="TrainerOptions.Seed"/>, or the one drawn when it was null).</summary>
    [JsonInclude]
    public int Seed { get; internal set; }

    /// <summary>Optimizer steps done.</summary>
    [JsonInclude]
    public long TotalSteps { get; internal set; }

    /// <summary>Planned optimizer steps.</summary>
    [JsonInclude]
    public long PlannedSteps { get; internal set; }

    /// <summary>Training rows (counted by the pass before training).</summary>
    [JsonInclude]
    public long TrainingRows { get; internal set; }

    /// <summary>Final one-row batches that were dropped (never reached a normalization layer in training mode).</summary>
    [JsonInclude]
    public long DroppedSingleRowBatches { get; internal set; }

    /// <summary>Wall-clock seconds of the whole run, including the statistics pass and validation.</summary>
    [JsonInclude]
    public double TrainSeconds { get; internal set; }

    /// <summary>The per-channel input mean stored into the network.</summary>
    [JsonIgnore]
    public IReadOnlyList<float> InputMean => InputMeanData;

    [JsonInclude]
    [JsonPropertyName("inputMean")]
    internal float[] InputMeanData { get; set; } = Array.Empty<float>();

    /// <summary>The per-channel input standard deviation stored into the network.</summary>
    [JsonIgnore]
    public IReadOnlyList<float> InputStd => InputStdData;

    [JsonInclude]
    [JsonPropertyName("inputStd")]
    internal float[] InputStdData { get; set; } = Array.Empty<float>();

    /// <summary>The run as indented JSON (camelCase; non-finite numbers as "NaN"/"Infinity").</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads JSON written by <see cref="ToJson"/>.</summary>
    public static TrainingHistory FromJson(string json) =>
        JsonSerializer.Deserialize<TrainingHistory>(json, JsonOptions) ?? throw new ArgumentException("The history JSON is null.", nameof(json));

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>.</summary>
    public void SaveJson(string path) => File.WriteAllText(path, ToJson());

    /// <summary>
    /// The epoch and step rows as CSV (invariant culture): <c>kind,epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,
    /// learning_rate,elapsed_s,images_per_s</c>, then <c>LAYER_p15,LAYER_p50,LAYER_p85</c> for each probed layer.
    /// Step rows come first, then epoch rows; missing values are empty.
    /// </summary>
    public string ToCsv()
    {
        var sb = new StringBuilder();
        sb.Append("kind,epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,elapsed_s,images_per_s");
        foreach (ProbedLayer layer in Layers)
        {
            sb.Append(CultureInfo.InvariantCulture, $",{layer.Name}_p15,{layer.Name}_p50,{layer.Name}_p85");
        }

        sb.Append('\n');
        foreach (HistoryEntry e in Steps)
        {
            AppendRow(sb, "step", e);
        }

        foreach (HistoryEntry e in Epochs)
        {
            AppendRow(sb, "epoch", e);
        }

        return sb.ToString();
    }

    /// <summary>Writes <see cref="ToCsv"/> to <paramref name="path"/>.</summary>
    public void SaveCsv(string path) => File.WriteAllText(path, ToCsv());

    private void AppendRow(StringBuilder sb, string kind, HistoryEntry e)
    {
        sb.Append(kind).Append(',').Append(e.Epoch.ToString(CultureInfo.InvariantCulture))
          .Append(',').Append(e.Step.ToString(CultureInfo.InvariantCulture))
          .Append(',').Append(F(e.TrainLoss)).Append(',').Append(F(e.TrainAccuracy))
          .Append(',').Append(F(e.ValidationLoss)).Append(',').Append(F(e.ValidationAccuracy))
          .Append(',').Append(F(e.LearningRate)).Append(',').Append(F(e.ElapsedSeconds)).Append(',').Append(F(e.ImagesPerSecond));
        foreach (ProbedLayer layer in Layers)
        {
            LayerPercentiles? p = e.Percentiles.FirstOrDefault(x => x.Layer == layer.Name);
            sb.Append(',').Append(F(p?.P15)).Append(',').Append(F(p?.P50)).Append(',').Append(F(p?.P85));
        }

        sb.Append('\n');
    }

    private static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : string.Empty;
}
