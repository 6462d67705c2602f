using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>One row of a <see cref="TrainingHistory"/>: the state at the end of an epoch or at a logged step.</summary>
public sealed class HistoryEntry
{
    /// <summary>Zero-based epoch.</summary>
    public int Epoch { get; set; }

    /// <summary>Optimizer steps done so far (over all epochs).</summary>
    public long Step { get; set; }

    /// <summary>Mean training loss: over the epoch for epoch rows, over the steps since the previous step row for step rows.</summary>
    public double TrainLoss { get; set; }

    /// <summary>Training accuracy over the same span as <see cref="TrainLoss"/> (train mode, augmented inputs).</summary>
    public double TrainAccuracy { get; set; }

    /// <summary>Validation loss (eval mode); epoch rows with a validation source only.</summary>
    public double? ValidationLoss { get; set; }

    /// <summary>Validation accuracy (eval mode); epoch rows with a validation source only.</summary>
    public double? ValidationAccuracy { get; set; }

    /// <summary>The learning rate of the last step of the span.</summary>
    public double LearningRate { get; set; }

    /// <summary>Seconds since training started.</summary>
    public double ElapsedSeconds { get; set; }

    /// <summary>Training images per second over the span (validation excluded).</summary>
    public double ImagesPerSecond { get; set; }

    /// <summary>
    /// 15/50/85th percentiles of each probed layer's input (<see cref="BnCnn.ProbedLayers"/>) sampled on one training batch:
    /// on this step for step rows, on the epoch's last sampled step for epoch rows; empty when not recorded.
    /// </summary>
    public List<LayerPercentiles> Percentiles { get; set; } = new();
}

/// <summary>Where and why a run diverged.</summary>
public sealed class DivergenceInfo
{
    /// <summary>Zero-based epoch of the step that produced the non-finite loss.</summary>
    public int Epoch { get; set; }

    /// <summary>Zero-based step whose loss was NaN or infinite (no update was applied for it).</summary>
    public long Step { get; set; }

    /// <summary>Learning rate of that step.</summary>
    public double LearningRate { get; set; }

    /// <summary>
    /// The loss value ("NaN", "Infinity" or "-Infinity" in JSON). When <see cref="NonFiniteState"/> is set, the last
    /// finite loss before the state went bad.
    /// </summary>
    public double Loss { get; set; }

    /// <summary>
    /// True when the last loss was finite but the network that training ended with was not: its weights or running
    /// statistics held NaN or infinity (the last update overflowed), or its eval-mode scores of a few training rows did.
    /// </summary>
    public bool NonFiniteState { get; set; }

    /// <summary>The network tensors (state-dict names) that held NaN or infinity when training stopped.</summary>
    public List<string> NonFiniteTensors { get; set; } = new();

    /// <summary>
    /// The network was restored to its state after this many optimizer steps: the last state whose weights and
    /// buffers (BN running mean, variance and batch counter) were all finite and whose training loss was finite.
    /// 0 is the initial, untrained network. Null when no such state was restored (the best validation epoch was kept,
    /// or the very first forward pass already diverged).
    /// </summary>
    public long? RestoredStep { get; set; }
}

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
    public List<HistoryEntry> Epochs { get; set; } = new();

    /// <summary>One row every <see cref="TrainerOptions.LogEverySteps"/> steps.</summary>
    public List<HistoryEntry> Steps { get; set; } = new();

    /// <summary>The probed layers, in the order of each row's percentiles.</summary>
    public List<ProbedLayer> Layers { get; set; } = new();

    /// <summary>
    /// Set when a NaN or infinite loss, or NaN or infinite weights or running statistics, stopped training; the network
    /// then holds the last finite state (see <see cref="DivergenceInfo.RestoredStep"/>).
    /// </summary>
    public DivergenceInfo? Divergence { get; set; }

    /// <summary>True when training stopped on a NaN or infinite loss.</summary>
    [JsonIgnore]
    public bool Diverged => Divergence is not null;

    /// <summary>Zero-based epoch with the best validation metric, when there was a validation source.</summary>
    public int? BestEpoch { get; set; }

    /// <summary>Whether early stopping ended training before the planned epochs/steps.</summary>
    public bool StoppedEarly { get; set; }

    /// <summary>Whether <see cref="TrainerOptions.TimeBudgetSeconds"/> ended training before the planned epochs/steps.</summary>
    public bool StoppedByTimeBudget { get; set; }

    /// <summary>Whether the best epoch's weights were loaded back at the end.</summary>
    public bool RestoredBestWeights { get; set; }

    /// <summary>Optimizer steps done.</summary>
    public long TotalSteps { get; set; }

    /// <summary>Planned optimizer steps.</summary>
    public long PlannedSteps { get; set; }

    /// <summary>Training rows (counted by the pass before training).</summary>
    public long TrainingRows { get; set; }

    /// <summary>Final one-row batches that were dropped (never reached a normalization layer in training mode).</summary>
    public long DroppedSingleRowBatches { get; set; }

    /// <summary>Wall-clock seconds of the whole run, including the statistics pass and validation.</summary>
    public double TrainSeconds { get; set; }

    /// <summary>The per-channel input mean stored into the network.</summary>
    public float[] InputMean { get; set; } = Array.Empty<float>();

    /// <summary>The per-channel input standard deviation stored into the network.</summary>
    public float[] InputStd { get; set; } = Array.Empty<float>();

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
            LayerPercentiles? p = e.Percentiles.Find(x => x.Layer == layer.Name);
            sb.Append(',').Append(F(p?.P15)).Append(',').Append(F(p?.P50)).Append(',').Append(F(p?.P85));
        }

        sb.Append('\n');
    }

    private static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : string.Empty;
}
