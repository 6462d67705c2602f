namespace Bn.MLNet.Training;

/// <summary>Statistics of a data source, from one streaming pass.</summary>
/// <param name="Mean">Per-channel (or per-feature) mean.</param>
/// <param name="Std">Per-channel (or per-feature) population standard deviation; 1 for a constant one.</param>
/// <param name="Rows">Rows read.</param>
/// <param name="TargetMean">Mean of the label as a number (the regression target).</param>
/// <param name="TargetStd">Its population standard deviation; 1 when constant.</param>
internal sealed record InputStatistics(float[] Mean, float[] Std, long Rows, float TargetMean, float TargetStd);
