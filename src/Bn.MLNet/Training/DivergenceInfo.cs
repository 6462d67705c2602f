using System.Text.Json.Serialization;
namespace Bn.MLNet.Training;

/// <summary>Where and why a run diverged.</summary>
public sealed class DivergenceInfo
{
    /// <summary>Zero-based epoch of the step that produced the non-finite loss.</summary>
    [JsonInclude]
    public int Epoch { get; internal set; }

    /// <summary>Zero-based step whose loss was NaN or infinite (no update was applied for it).</summary>
    [JsonInclude]
    public long Step { get; internal set; }

    /// <summary>Learning rate of that step.</summary>
    [JsonInclude]
    public double LearningRate { get; internal set; }

    /// <summary>
    /// The loss value ("NaN", "Infinity" or "-Infinity" in JSON). When <see cref="NonFiniteState"/> is set, the last
    /// finite loss before the state went bad.
    /// </summary>
    [JsonInclude]
    public double Loss { get; internal set; }

    /// <summary>
    /// True when the last loss was finite but the network that training ended with was not: its weights or running
    /// statistics held NaN or infinity (the last update overflowed), or its eval-mode scores of a few training rows did.
    /// </summary>
    [JsonInclude]
    public bool NonFiniteState { get; internal set; }

    /// <summary>The network tensors (state-dict names) that held NaN or infinity when training stopped.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> NonFiniteTensors => NonFiniteTensorsData;

    [JsonInclude]
    [JsonPropertyName("nonFiniteTensors")]
    internal List<string> NonFiniteTensorsData { get; set; } = new();

    /// <summary>
    /// The network was restored to its state after this many optimizer steps: the last state whose weights and
    /// buffers (BN running mean, variance and batch counter) were all finite and whose training loss was finite.
    /// 0 is the initial, untrained network. Null when no such state was restored (the best validation epoch was kept,
    /// or the very first forward pass already diverged).
    /// </summary>
    [JsonInclude]
    public long? RestoredStep { get; internal set; }
}
