using System.CommandLine;

namespace Bn.MLNet.Samples.Commands;

/// <summary>Options that several commands take, defined once (each command gets its own instance).</summary>
internal static class SharedOptions
{
    /// <summary><c>--data DIR</c>: the Fashion-MNIST folder.</summary>
    public static Option<string?> DataDirectory() => new("--data")
    {
        Description = "Folder with the four Fashion-MNIST IDX files (gz or raw). Default: the bundled datasets/fashion-mnist (or $BNMLNET_DATA).",
        HelpName = "DIR",
    };

    /// <summary><c>--train-limit N</c>: a prefix of the training set.</summary>
    public static Option<int?> TrainLimit() => new Option<int?>("--train-limit")
    {
        Description = "Use only the first N training rows (default: all 60,000).",
        HelpName = "N",
    }.AtLeast(1);
}
