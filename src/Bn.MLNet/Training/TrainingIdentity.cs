using System.Text.Json;
using System.Text.Json.Nodes;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>
/// What a run computes, which a resumed run must share with the checkpoint it resumes: the network's architecture, the
/// training settings that change the result (all of <see cref="TrainerOptions"/> except the thread count, logging,
/// progress and checkpoint settings), and the data (the sources' schema, their shuffling seed and buffer, the training
/// rows, and what the caller adds, for example the estimator's label values and initial model).
/// </summary>
internal static class TrainingIdentity
{
    /// <summary>Settings that change neither the weights nor the history's numbers.</summary>
    private static readonly string[] Ignored =
    {
        nameof(TrainerOptions.Threads), nameof(TrainerOptions.LogEverySteps), nameof(TrainerOptions.RecordPercentiles),
        nameof(TrainerOptions.PercentileSampleSize), nameof(TrainerOptions.ProgressEverySteps), nameof(TrainerOptions.EvaluationBatchSize),
        nameof(TrainerOptions.ValidationEverySteps), nameof(TrainerOptions.CheckpointDirectory), nameof(TrainerOptions.CheckpointsToKeep),
    };

    /// <summary>The identity as JSON.</summary>
    public static string Of(NetworkArchitecture architecture, TrainerOptions options, BatchSource train, BatchSource? validation, long trainingRows, string? caller)
    {
        var trainer = JsonSerializer.SerializeToNode(options, Checkpoint.Json)!.AsObject();
        foreach (string name in Ignored)
            trainer.Remove(JsonNamingPolicy.CamelCase.ConvertName(name));
        var identity = new JsonObject
        {
            ["architecture"] = JsonNode.Parse(architecture.ToJson()),
            ["trainer"] = trainer,
            ["trainingData"] = train.Describe(),
            ["trainingRows"] = trainingRows,
            ["validationData"] = validation?.Describe(),
            ["caller"] = caller,
        };
        return identity.ToJsonString();
    }

    /// <summary>The first difference between two identities ("trainer.epochs is 10 in the checkpoint and 20 in this run"), or null when equal.</summary>
    public static string? FirstDifference(string checkpoint, string current) =>
        JsonDifference.First(checkpoint, current) is { } d ? $"{d.Path} is {d.Left ?? "absent"} in the checkpoint and {d.Right ?? "absent"} in this run" : null;
}
