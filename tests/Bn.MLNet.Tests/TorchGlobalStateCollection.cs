namespace Bn.MLNet.Tests;

/// <summary>
/// Tests that change libtorch global state (manual seed, thread count) join this collection so that they never
/// run in parallel with each other.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalStateCollection
{
    /// <summary>The collection name.</summary>
    public const string Name = "Torch global state";
}
