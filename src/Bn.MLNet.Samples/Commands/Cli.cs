using System.CommandLine;
using Bn.MLNet.Samples.Experiments;

namespace Bn.MLNet.Samples.Commands;

/// <summary>The samples app's command line: the main job (no command) and its commands.</summary>
public static class Cli
{
    private static readonly Lazy<RootCommand> Root = new(Build);

    /// <summary>The root command with every subcommand (built once; parsing does not change it).</summary>
    public static RootCommand CreateRootCommand() => Root.Value;

    private static RootCommand Build()
    {
        var root = new RootCommand(
            "Bn.MLNet samples: Batch Normalization (Ioffe & Szegedy 2015) for ML.NET with TorchSharp. " +
            "Without a command: train the default BN CNN through an ML.NET pipeline on Fashion-MNIST, evaluate, save, reload and score.");
        MainJob.Attach(root);
        root.Add(TrainCommand.Create());
        root.Add(ModelCommands.CreateEvaluate());
        root.Add(ModelCommands.CreatePredict());
        root.Add(ExperimentCommand.Create());
        root.Add(BenchCommand.Create());
        root.Add(ImagePipelineCommand.Create());
        root.Add(ExportOnnxCommand.Create());
        root.Add(FineTuneCommand.Create());
        root.Add(TaskCommands.CreateBinary());
        root.Add(TaskCommands.CreateRegression());
        return root;
    }
}
