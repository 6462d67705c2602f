namespace Bn.MLNet.Training;

/// <summary>Per-channel statistics of a data source, from one streaming pass.</summary>
/// <param name="Mean">Per-channel mean.</param>
/// <param name="Std">Per-channel (population) standard deviation; 1 for a constant channel.</param>
/// <param name="Rows">Rows read.</param>
internal sealed record InputStatistics(float[] Mean, float[] Std, long Rows);
